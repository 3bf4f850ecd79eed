"""What room owners and admins ask of the Text Conference Manager hosting a room (XEP-0045 §8–§10,
whichever front end carries it): the room's configuration, its member lists (affiliations), its
subject, and its destruction. Each is checked against the room's owners and the chat settings,
stored in the external database (``tc_rooms.config``, ``subject``/``spacket``, ``tc_users``), and
only then applied to the room in memory and broadcast to its occupants.

``RoomAdministration`` is a part of ``TextConferenceManager`` (``service``), kept apart because it
is one job: the requests it serves are ``_op_<op>`` methods like the service's own.
"""

from __future__ import annotations

from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc import requests
from messaging.tc.rooms import (
    AFFILIATION_RANK,
    MAX_NICK_BYTES,
    MAX_SUBJECT,
    MEMBER_AFFILIATIONS,
    MODERATOR_AFFILIATIONS,
    Affiliation,
    Role,
    Room,
    RoomType,
    nick_for,
)
from messaging.tc.store import AffiliationChange


class RoomAdministration:
    """The owner and admin requests of a Text Conference Manager (``self`` is the service)."""

    async def _op_get_config(self, request: requests.GetConfiguration) -> requests.Configuration:
        hosted = await self._room(request.room)
        _check_owner(hosted.room, request.user, "configure")
        return self._configuration(hosted.room)

    async def _op_configure(self, request: requests.Configure) -> requests.Configuration:
        hosted = await self._room(request.room)
        room, policy = hosted.room, self.config.policy
        _check_owner(room, request.user, "configure")
        config = policy.configure(room.config, request.changes)
        if config == room.config:
            return self._configuration(room)  # an instant room: the defaults are accepted as they are
        self._check_database()
        async with hosted.lock:
            if config.persistent and not room.persistent:
                # Making a room persistent is creating a persistent room, as far as the settings go.
                aliases = self.directory.snapshot.aliases_of(self.directory.snapshot.home_of_room(room.jid))
                _, persistent_count = await self.store.count_rooms(aliases)
                policy.check_create(
                    request.user, True, 0, persistent_count, self.administrators_of(self.node.cluster_id)
                )
            was_moderated = room.config.moderated
            await self._fenced(self.store.save_config(room, config, self.hosting.fence_for(room.jid)))
            room.config = config
            room.room_type = RoomType.PERSISTENT if config.persistent else RoomType.AD_HOC
            if config.members_only:
                removed = [jid for jid in room.occupants if not room.is_member(jid)]
                for jid in removed:
                    occupant = await self._remove_occupant(hosted, jid)
                    await self._broadcast(room.jid, room.presence_event(jid, occupant.nick, "left", kicked="322"))
            if was_moderated and not config.moderated:
                await self._broadcast(room.jid, *self._voice_for_visitors(room))
        await self._broadcast(room.jid, {"event": "config", "room": room.jid})
        return self._configuration(room)

    @staticmethod
    def _voice_for_visitors(room: Room) -> list[dict]:
        """A room that stops being moderated gives voice to its visitors: in an unmoderated room
        every occupant may speak (XEP-0045 §4), as a visitor entering it now would (§5.1.2), and
        every occupant hears each role change (§5.1.3). ejabberd lets visitors speak once a room
        is unmoderated without saying so in their presence; Prosody keeps them silenced. A room
        that becomes moderated takes nobody's voice (neither does either server, nor is it a
        transition of XEP-0045's role chart): its moderators take it where they want to."""
        events = []
        for occupant in room.occupants.values():
            if occupant.role == Role.VISITOR:
                occupant.role = Role.PARTICIPANT
                event = room.presence_event(occupant.jid, occupant.nick, "joined")
                events.append({**event, "changed": True, "reason": "The room is no longer moderated."})
        return events

    def _configuration(self, room: Room) -> requests.Configuration:
        policy = self.config.policy
        config = room.config
        return requests.Configuration(
            room=room.jid,
            name=config.name,
            description=config.description,
            persistent=room.persistent,
            members_only=config.members_only,
            max_occupants=config.max_occupants,
            change_subject=config.change_subject,
            public=config.public,
            whois=str(config.whois),
            moderated=config.moderated,
            password_protected=config.password_protected,
            secret="",  # stored as a salted hash: the form never shows it
            allow_pm=str(config.allow_pm),
            allow_invites=config.allow_invites,
            occupancy_limit=policy.max_users_per_room,
            locked=tuple(sorted(policy.locked_fields())),
        )

    async def _op_get_affiliations(self, request: requests.GetAffiliations) -> requests.Affiliations:
        hosted = await self._room(request.room)
        room = hosted.room
        try:
            wanted = Affiliation(request.affiliation)
        except ValueError:
            raise ChatError(ErrorCode.BAD_REQUEST, f"{request.affiliation!r} is not an affiliation.") from None
        if wanted == Affiliation.NONE:
            raise ChatError(ErrorCode.BAD_REQUEST, "Ask for the member, outcast, admin or owner list.")
        mine = room.affiliation(request.user)
        allowed = MODERATOR_AFFILIATIONS if wanted in (Affiliation.MEMBER, Affiliation.OUTCAST) else {Affiliation.OWNER}
        if mine not in allowed:
            who = "owners and admins" if len(allowed) > 1 else "owners"
            raise ChatError(ErrorCode.FORBIDDEN, f"Only the room's {who} may read its {wanted} list.")
        items = tuple(
            {"user": jid, "affiliation": str(affiliation), "nick": room.reserved_nick(jid)}
            for jid, affiliation in sorted(room.members.items())
            if affiliation == wanted
        )
        return requests.Affiliations(room=room.jid, items=items)

    async def _op_set_affiliations(self, request: requests.SetAffiliations) -> requests.Done:
        hosted = await self._room(request.room)
        room, actor = hosted.room, request.user
        mine = room.affiliation(actor)
        if mine not in MODERATOR_AFFILIATIONS:
            raise ChatError(
                ErrorCode.FORBIDDEN, f"Only the room's owners and admins may change who belongs to {room.jid}."
            )
        changes = [self._affiliation_change(room, item, mine) for item in request.items]
        if not changes:
            raise ChatError(ErrorCode.BAD_REQUEST, "Name at least one user and the affiliation to give them.")
        members = dict(room.members)
        for change in changes:
            members.pop(change.user, None)
            if change.affiliation != Affiliation.NONE:
                members[change.user] = change.affiliation
        if not any(affiliation == Affiliation.OWNER for affiliation in members.values()):
            raise ChatError(ErrorCode.LAST_OWNER, f"{room.jid} needs an owner; make someone else an owner first.")
        self._check_database()
        async with hosted.lock:
            for change in changes:
                if change.nick:
                    room.check_nick(change.user, change.nick)
            await self._fenced(self.store.save_affiliations(room, changes, actor, self.hosting.fence_for(room.jid)))
            room.members = members
            for change in changes:
                if change.affiliation == Affiliation.NONE:
                    room.nicks.pop(change.user, None)  # its row, and the nickname in it, are gone
                elif change.nick is not None:
                    room.nicks.pop(change.user, None)
                    if change.nick and change.nick != nick_for(change.user):
                        room.nicks[change.user] = change.nick
                occupant = room.occupants.get(change.user)
                if occupant is None:
                    continue
                # Banned, or no longer a member of a members-only room: out (XEP-0045 §9.1, §9.4).
                kicked = {Affiliation.OUTCAST: "301"}.get(change.affiliation)
                if kicked is None and room.config.members_only and not room.is_member(change.user):
                    kicked = "321"
                if kicked:
                    await self._remove_occupant(hosted, change.user)
                    await self._broadcast(room.jid, room.presence_event(change.user, occupant.nick, "left", kicked))
                else:
                    # The role follows the new affiliation (XEP-0045 §9.3: a new member gets voice).
                    occupant.role = room.default_role(change.user)
                    event = room.presence_event(change.user, occupant.nick, "joined")
                    await self._broadcast(room.jid, {**event, "changed": True})
        await self._publish_occupants(room)
        return requests.Done(room=room.jid)

    def _affiliation_change(self, room: Room, item: dict, mine: Affiliation) -> AffiliationChange:
        """One item of an affiliation change, checked: its user (by JID, or by the nickname of an
        occupant), a known affiliation, and what an admin may not do (XEP-0045 §9, §10)."""
        user = (item.get("user") or "").strip().lower()
        if not user and item.get("nick"):
            user = next((o.jid for o in room.occupants.values() if o.nick == item["nick"]), "")
            if not user:
                raise ChatError(ErrorCode.NOT_ACCEPTABLE, f"Nobody in {room.jid} has the nickname {item['nick']}.")
        if "@" not in user or "/" in user or any(ch.isspace() for ch in user):
            raise ChatError(ErrorCode.NOT_ACCEPTABLE, f"{user or 'An item'!r} is not a user's bare JID (user@domain).")
        try:
            affiliation = Affiliation(item.get("affiliation") or "")
        except ValueError:
            raise ChatError(
                ErrorCode.BAD_REQUEST,
                f"{item.get('affiliation')!r} is not an affiliation (owner, admin, member, outcast, none).",
            ) from None
        if mine != Affiliation.OWNER:
            if affiliation in MODERATOR_AFFILIATIONS:
                raise ChatError(ErrorCode.FORBIDDEN, f"Only owners may make someone an {affiliation} of {room.jid}.")
            if room.affiliation(user) in MODERATOR_AFFILIATIONS:
                raise ChatError(
                    ErrorCode.FORBIDDEN,
                    f"Only owners may change the affiliation of {user}, an {room.affiliation(user)}.",
                )
        reserved = item.get("reserved_nick")
        if reserved is not None:
            reserved = str(reserved)
            if affiliation not in MEMBER_AFFILIATIONS:
                reserved = None  # outcasts and non-members reserve no nickname (XEP-0045, business rules)
            elif reserved.strip() != reserved or len(reserved.encode()) > MAX_NICK_BYTES:
                raise ChatError(
                    ErrorCode.NOT_ACCEPTABLE,
                    f"A reserved nickname holds 1 to {MAX_NICK_BYTES} bytes, with no space at either end.",
                )
        return AffiliationChange(user, affiliation, str(item.get("reason") or ""), reserved)

    async def _op_get_roles(self, request: requests.GetRoles) -> requests.Roles:
        hosted = await self._room(request.room)
        room = hosted.room
        if request.role not in (Role.PARTICIPANT, Role.MODERATOR):
            raise ChatError(ErrorCode.BAD_REQUEST, "Ask for the voice list (participant) or the moderator list.")
        if not room.is_moderator(request.user):
            raise ChatError(ErrorCode.FORBIDDEN, f"Only the moderators of {room.jid} may read its {request.role} list.")
        items = tuple(
            {"user": o.jid, "nick": o.nick, "role": str(o.role), "affiliation": str(room.affiliation(o.jid))}
            for o in sorted(room.occupants.values(), key=lambda o: o.nick)
            if o.role == request.role
        )
        return requests.Roles(room=room.jid, items=items)

    async def _op_set_roles(self, request: requests.SetRoles) -> requests.Done:
        """Kick, voice and moderator status (XEP-0045 §8.2–§8.4, §9.6–§9.7). Nothing is stored:
        a role lasts for the occupant's visit. Every occupant hears the change, wherever they are
        signed in (the room's broadcast); a kicked occupant gets 307 and is out of the room."""
        hosted = await self._room(request.room)
        room, actor = hosted.room, request.user
        if not room.is_moderator(actor):
            raise ChatError(ErrorCode.FORBIDDEN, f"Only the moderators of {room.jid} may change occupants' roles.")
        if not request.items:
            raise ChatError(ErrorCode.BAD_REQUEST, "Name at least one occupant (by nick) and the role to give them.")
        events: list[dict] = []
        async with hosted.lock:
            changes = [self._role_change(room, actor, item) for item in request.items]
            actor_nick = room.occupants[actor].nick if actor in room.occupants else ""
            for occupant, role, reason in changes:
                if room.occupants.get(occupant.jid) is not occupant:
                    continue  # named twice, or gone meanwhile
                extra = {"reason": reason, "actor": actor_nick}
                if role == Role.NONE:
                    await self._remove_occupant(hosted, occupant.jid)
                    events.append({**room.presence_event(occupant.jid, occupant.nick, "left", "307"), **extra})
                elif role != occupant.role:
                    occupant.role = role
                    event = room.presence_event(occupant.jid, occupant.nick, "joined")
                    events.append({**event, "changed": True, **extra})
        if any(event.get("kicked") for event in events):
            await self._publish_occupants(room)
        await self._broadcast(room.jid, *events)
        return requests.Done(room=room.jid)

    async def _op_request_voice(self, request: requests.RequestVoice) -> requests.Moderators:
        """§8.6: a visitor's request for voice goes to the moderators in the room."""
        hosted = await self._room(request.room)
        room, user = hosted.room, request.user
        if user not in room.occupants:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room.jid} before asking for voice in it.")
        if room.role(user) != Role.VISITOR:
            raise ChatError(ErrorCode.NOT_ALLOWED, f"You have voice in {room.jid} already; only visitors ask for it.")
        moderators = tuple(
            {"user": o.jid, "router": o.router} for o in room.occupants.values() if o.role == Role.MODERATOR
        )
        return requests.Moderators(room=room.jid, nick=room.occupants[user].nick, moderators=moderators)

    def _role_change(self, room: Room, actor: str, item: dict):
        """One item of a role change, checked against XEP-0045's rules: an occupant named by
        nick, a known role, and what the actor's affiliation allows."""
        nick = str(item.get("nick") or "")
        if not nick:
            raise ChatError(ErrorCode.BAD_REQUEST, "Name the occupant whose role changes by nick.")
        occupant = next((o for o in room.occupants.values() if o.nick == nick), None)
        if occupant is None:
            raise ChatError(ErrorCode.OCCUPANT_NOT_FOUND, f"Nobody in {room.jid} has the nickname {nick}.")
        try:
            role = Role(item.get("role") or "")
        except ValueError:
            raise ChatError(
                ErrorCode.BAD_REQUEST,
                f"{item.get('role')!r} is not a role (moderator, participant, visitor, none).",
            ) from None
        mine, theirs = room.affiliation(actor), room.affiliation(occupant.jid)
        if role == Role.NONE and AFFILIATION_RANK[theirs] > AFFILIATION_RANK[mine]:
            raise ChatError(ErrorCode.NOT_ALLOWED, f"{nick} is an {theirs} of {room.jid}; you cannot kick them.")
        if role == Role.MODERATOR and mine not in MODERATOR_AFFILIATIONS:
            raise ChatError(ErrorCode.FORBIDDEN, f"Only owners and admins may make {nick} a moderator.")
        if role in (Role.VISITOR, Role.PARTICIPANT) and occupant.role != role:
            if theirs in MODERATOR_AFFILIATIONS:
                raise ChatError(
                    ErrorCode.NOT_ALLOWED, f"{nick} is an {theirs} of {room.jid}: a moderator while in the room."
                )
            if occupant.role == Role.MODERATOR and mine not in MODERATOR_AFFILIATIONS:
                raise ChatError(ErrorCode.NOT_ALLOWED, f"Only owners and admins may take moderator status from {nick}.")
            outranks = theirs != Affiliation.NONE and AFFILIATION_RANK[theirs] >= AFFILIATION_RANK[mine]
            if role == Role.VISITOR and outranks:
                raise ChatError(
                    ErrorCode.NOT_ALLOWED, f"{nick} is a {theirs} of {room.jid}; you cannot take their voice."
                )
        return occupant, role, str(item.get("reason") or "")

    async def _op_set_subject(self, request: requests.SetSubject) -> requests.Done:
        hosted = await self._room(request.room)
        room = hosted.room
        if request.user not in room.occupants:
            raise ChatError(ErrorCode.NOT_IN_ROOM, f"Join {room.jid} before changing its subject.")
        if not room.config.change_subject and not room.is_moderator(request.user):
            raise ChatError(ErrorCode.FORBIDDEN, f"Only moderators may change the subject of {room.jid}.")
        if room.role(request.user) == Role.VISITOR:
            raise ChatError(ErrorCode.FORBIDDEN, f"Visitors may not change the subject of {room.jid}.")
        if len(request.subject) > MAX_SUBJECT:
            raise ChatError(ErrorCode.NOT_ACCEPTABLE, f"A subject may hold at most {MAX_SUBJECT} characters.")
        nick = room.occupants[request.user].nick
        self._check_database()
        async with hosted.lock:
            await self._fenced(self.store.save_subject(room, request.subject, nick, self.hosting.fence_for(room.jid)))
            room.subject, room.subject_nick = request.subject, nick
        event = {"event": "subject", "room": room.jid, "subject": request.subject, "nick": nick, "from": request.user}
        await self._broadcast(room.jid, event)
        return requests.Done(room=room.jid)

    async def _op_destroy(self, request: requests.Destroy) -> requests.Done:
        """An owner destroys the room: its rows go (``tc_rooms``, ``tc_users``, ``tc_messages``;
        archived copies stay), as when a super administrator deletes it on Persistent Chat Rooms,
        and by the same rule: only while nobody else is in it."""
        hosted = await self._room(request.room)
        room = hosted.room
        _check_owner(room, request.user, "destroy")
        self._check_database()
        async with hosted.lock:
            others = [jid for jid in room.occupants if jid != request.user]
            if others:
                raise ChatError(
                    ErrorCode.NOT_ALLOWED,
                    f"{room.jid} cannot be destroyed while {len(others)} other user(s) are in it; "
                    "it can be destroyed once they have left.",
                )
            occupant = room.occupants.pop(request.user, None)
            await self._fenced(self.store.destroy_room(room, self.hosting.fence_for(room.jid)))
            self.rooms.pop(room.jid, None)
            if hosted.worker is not None:
                hosted.worker.cancel()
        if occupant is not None:
            await self._publish_occupants(room)
            event = room.presence_event(request.user, occupant.nick, "left", kicked="destroyed")
            await self._broadcast(room.jid, {**event, "reason": request.reason})
        return requests.Done(room=room.jid)


def _check_owner(room: Room, user: str, action: str) -> None:
    if room.affiliation(user) != Affiliation.OWNER:
        raise ChatError(ErrorCode.FORBIDDEN, f"Only the owners of {room.jid} may {action} it.")
