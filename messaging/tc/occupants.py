"""What occupants ask of the Text Conference Manager hosting a room about one another (XEP-0045
§7.5–§7.8, whichever front end carries it): a new nickname in the room, and whom a private
message goes to.

``OccupantRequests`` is a part of ``TextConferenceManager`` (``service``), kept apart because it
is one job: the requests it serves are ``_op_<op>`` methods like the service's own. What reaches
users is delivered by their routers; the room only says who and where.
"""

from __future__ import annotations

from messaging.chat.errors import ChatError, ErrorCode
from messaging.tc import requests
from messaging.tc.rooms import PARTICIPATION_MODERATOR


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
            self._vouched_occupant(room, user, True, request.old_nick, request.router)
            if any(o.nick == nick and o.jid != user for o in room.occupants.values()):
                raise ChatError(ErrorCode.NICK_IN_USE, f"Someone else in {room.jid} has the nickname {nick}.")
            occupant = room.occupants[user]
            old = occupant.nick
            if old != nick:
                occupant.nick = nick
                if self.config.policy.archive_joins_and_exits:
                    await self.store.log_presence(user, room.nick_jid(old), "L")
                    await self.store.log_presence(user, room.nick_jid(nick), "E")
        if old != nick:
            await self._broadcast(room.jid, {**room.presence_event(user, nick, "nick"), "old_nick": old})
        return requests.NickChanged(room=room.jid, old_nick=old, nick=nick, affiliation=str(room.affiliation(user)))

    async def _op_private_message(self, request: requests.PrivateMessage) -> requests.Recipient:
        """XEP-0045 §7.5: the occupant known as ``to_nick``, for the sender's router to deliver to;
        the chat settings' lowest participation level for private messages applies."""
        hosted = await self._room(request.room)
        room, user = hosted.room, request.user
        self._vouched_occupant(room, user, True, request.nick, request.router)
        if self.config.policy.private_message_min_level == PARTICIPATION_MODERATOR and not room.is_moderator(user):
            raise ChatError(ErrorCode.FORBIDDEN, f"Only moderators may send private messages in {room.jid}.")
        recipient = next((o for o in room.occupants.values() if o.nick == request.to_nick), None)
        if recipient is None:
            raise ChatError(ErrorCode.OCCUPANT_NOT_FOUND, f"Nobody in {room.jid} has the nickname {request.to_nick}.")
        return requests.Recipient(
            room=room.jid, user=recipient.jid, router=recipient.router, nick=room.occupants[user].nick
        )
