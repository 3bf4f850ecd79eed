"""What occupants ask of the Text Conference Manager hosting a room about one another (XEP-0045
§7.5–§7.8, whichever front end carries it): a new nickname in the room, whom a private
message goes to, and whether an invitation may go out (and what it changes in a members-only
room).

``OccupantRequests`` is a part of ``TextConferenceManager`` (``service``), kept apart because it
is one job: the requests it serves are ``_op_<op>`` methods like the service's own. What reaches
users is delivered by their routers; the room only says who and where.
"""

from __future__ import annotations

from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc import requests
from messaging.tc.rooms import LEVEL_OF_ALLOW_PM, MAX_NICK_BYTES, Affiliation, Role, reaches
from messaging.tc.store import AffiliationChange

# Who has a participation level, as refusals name them.
WHO = {"visitor": "occupants", "participant": "participants and moderators", "moderator": "moderators"}


class OccupantRequests:
    """Occupants' requests of a Text Conference Manager (``self`` is the service)."""

    async def _op_change_nick(self, request: requests.ChangeNick) -> requests.NickChanged:
        """XEP-0045 §7.6: the occupant is known by ``nick`` from now on; everyone in the room hears
        it (the occupant's own router answers the occupant)."""
        hosted = await self._room(request.room)
        room, user, nick = hosted.room, request.user, request.nick
        if not nick.strip():
            raise ChatError(ErrorCode.BAD_REQUEST, "A nickname cannot be blank.")
        async with hosted.lock:
            self._vouched_occupant(room, user, True, request.old_nick, request.router, request.role)
            room.check_nick(user, nick)
            occupant = room.occupants[user]
            old = occupant.nick
            if old != nick:
                occupant.nick = nick
                if self.config.policy.archive_joins_and_exits:
                    await self.store.log_presence(user, room.nick_jid(old), "L")
                    await self.store.log_presence(user, room.nick_jid(nick), "E")
        if old != nick:
            await self._broadcast(room.jid, {**room.presence_event(user, nick, "nick"), "old_nick": old})
        return requests.NickChanged(
            room=room.jid, old_nick=old, nick=nick, affiliation=str(room.affiliation(user)), role=str(room.role(user))
        )

    async def _op_private_message(self, request: requests.PrivateMessage) -> requests.Recipient:
        """XEP-0045 §7.5: the occupant known as ``to_nick``, for the sender's router to deliver to;
        the room's ``allowpm`` applies (from the chat settings' lowest participation level for
        private messages, which owners may change while the settings let them)."""
        hosted = await self._room(request.room)
        room, user = hosted.room, request.user
        self._vouched_occupant(room, user, True, request.nick, request.router, request.role)
        level = LEVEL_OF_ALLOW_PM.get(room.config.allow_pm)
        if level is None:
            raise ChatError(ErrorCode.FORBIDDEN, f"Private messages are off in {room.jid}.")
        if not reaches(room.role(user), level):
            raise ChatError(ErrorCode.FORBIDDEN, f"Only {WHO[level]} may send private messages in {room.jid}.")
        recipient = next((o for o in room.occupants.values() if o.nick == request.to_nick), None)
        if recipient is None:
            raise ChatError(ErrorCode.OCCUPANT_NOT_FOUND, f"Nobody in {room.jid} has the nickname {request.to_nick}.")
        return requests.Recipient(
            room=room.jid, user=recipient.jid, router=recipient.router, nick=room.occupants[user].nick
        )

    async def _op_invite(self, request: requests.Invite) -> requests.Invited:
        """XEP-0045 §7.8.2. Who may invite: every occupant whose role reaches the chat settings'
        *Lowest participation level a user can have to invite others to the room*; in a
        members-only room only moderators unless the room's ``allowinvites`` is on (Prosody's
        ``allow_member_invites``; its default is *Only moderators can invite people to
        members-only rooms* off, and owners change it while the settings let them). An invitee with
        no affiliation becomes a member of a members-only room, as in Prosody, so the invitation
        lets them in; the change is stored (``tc_users``, reason "Invited by <nick>") before the
        invitation goes out."""
        hosted = await self._room(request.room)
        room, user, policy = hosted.room, request.user, self.config.policy
        invitee = request.invitee.strip().lower()
        if "@" not in invitee or "/" in invitee or any(ch.isspace() for ch in invitee):
            raise ChatError(ErrorCode.BAD_REQUEST, f"{request.invitee!r} is not a user's bare JID (user@domain).")
        self._vouched_occupant(room, user, True, request.nick, request.router, request.role)
        moderator = room.is_moderator(user)
        level = policy.invite_min_level
        if not reaches(room.role(user), level):
            raise ChatError(ErrorCode.FORBIDDEN, f"Only {WHO[level]} may invite people to {room.jid}.")
        members_only = room.config.members_only
        if members_only and not room.config.allow_invites and not moderator:
            raise ChatError(
                ErrorCode.FORBIDDEN, f"Only moderators may invite people to {room.jid}, a members-only room."
            )
        if not request.known:
            # XEP-0045 §7.8.2: a JID nobody has is item-not-found, once the inviter may invite.
            raise ChatError(ErrorCode.UNKNOWN_USER, f"There is no user {invitee} in IM and Presence.")
        nick = room.occupants[user].nick
        added = False
        if members_only and room.affiliation(invitee) == Affiliation.NONE:
            self._check_database()
            change = AffiliationChange(invitee, Affiliation.MEMBER, f"Invited by {nick}")
            async with hosted.lock:
                if room.affiliation(invitee) == Affiliation.NONE:
                    await self._fenced(
                        self.store.save_affiliations(room, [change], user, self.hosting.fence_for(room.jid))
                    )
                    room.members[invitee] = Affiliation.MEMBER
                    added = True
        return requests.Invited(room=room.jid, invitee=invitee, nick=nick, member_added=added)

    async def _op_register(self, request: requests.Register) -> requests.Registration:
        """XEP-0045 §7.10: a member registers the nickname reserved for them in the room (stored
        in ``tc_users.nick_jid``); a user with no affiliation may too where they could add
        themselves as a member by joining (*Users can add themselves to rooms as members*, an
        open persistent room), and becomes a member. Nobody else may register (``not-allowed``),
        and an outcast is ``forbidden``. A nickname another occupant has, or another member
        reserved, is a ``conflict``."""
        hosted = await self._room(request.room)
        room, user, policy = hosted.room, request.user, self.config.policy
        affiliation = room.affiliation(user)
        if affiliation == Affiliation.OUTCAST:
            raise ChatError(ErrorCode.FORBIDDEN, f"You are banned from {room.jid}.")
        self_service = policy.users_add_themselves_as_members and room.persistent and not room.config.members_only
        if affiliation == Affiliation.NONE and not self_service:
            raise ChatError(
                ErrorCode.NOT_ALLOWED,
                f"Only members of {room.jid} register a nickname with it; ask a room owner or admin to add you.",
            )
        if not request.nick:
            return requests.Registration(room=room.jid, nick=room.reserved_nick(user), registered=room.is_member(user))
        nick = request.nick
        if not nick.strip() or len(nick.encode()) > MAX_NICK_BYTES:
            raise ChatError(ErrorCode.BAD_REQUEST, f"A nickname holds 1 to {MAX_NICK_BYTES} bytes and is not blank.")
        self._check_database()
        joined = None
        async with hosted.lock:
            room.check_nick(user, nick)
            affiliation = room.affiliation(user)
            new_member = affiliation == Affiliation.NONE
            if new_member:
                affiliation = Affiliation.MEMBER
            fence = self.hosting.fence_for(room.jid)
            await self._fenced(self.store.save_nick(room, user, nick, affiliation, fence))
            room.members[user] = affiliation
            room.nicks[user] = nick
            occupant = room.occupants.get(user)
            if new_member and occupant is not None:
                # §7.10: an occupant whose affiliation changed is heard by everyone, with the
                # role a member has (voice, in a moderated room too).
                if occupant.role == Role.VISITOR:
                    occupant.role = Role.PARTICIPANT
                joined = {**room.presence_event(user, occupant.nick, "joined"), "changed": True}
        if joined is not None:
            await self._broadcast(room.jid, joined)
        return requests.Registration(room=room.jid, nick=nick, registered=True)
