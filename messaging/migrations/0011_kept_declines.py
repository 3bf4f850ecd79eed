import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    """Kept invitations also hold declines, for inviters signed in nowhere: a kind, and the
    inviter is the sender."""

    dependencies = [
        ('messaging', '0010_kept_invitations'),
        ('topology', '0009_help_text_without_angle_brackets'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='keptinvitation',
            name='messaging_keptinvitation_unique_room_inviter_per_user',
        ),
        migrations.RenameField(
            model_name='keptinvitation',
            old_name='inviter',
            new_name='sender',
        ),
        migrations.AddField(
            model_name='keptinvitation',
            name='kind',
            field=models.CharField(choices=[('invite', 'Invitation'), ('decline', 'Declined invitation')], default='invite', editable=False, help_text="An invitation to the user, or another user's decline of the user's invitation.", max_length=16),
        ),
        migrations.AlterField(
            model_name='keptinvitation',
            name='sender',
            field=models.CharField(editable=False, help_text="Who sent it: the inviter's bare JID, as the room checked it, or the invitee who declined.", max_length=1024),
        ),
        migrations.AlterField(
            model_name='keptinvitation',
            name='reason',
            field=models.TextField(blank=True, editable=False, help_text='The reason the sender gave, if any.'),
        ),
        migrations.AlterField(
            model_name='keptinvitation',
            name='stanza_id',
            field=models.CharField(blank=True, editable=False, help_text="The id of the sender's message, kept on what is handed over.", max_length=255),
        ),
        migrations.AlterField(
            model_name='keptinvitation',
            name='invited',
            field=models.DateTimeField(auto_now=True, help_text='When it was sent (its XEP-0203 delay stamp on delivery).'),
        ),
        migrations.AlterField(
            model_name='keptinvitation',
            name='user',
            field=models.ForeignKey(editable=False, help_text="Who gets it (the invitee, or for a decline the inviter); handed to this user's next session, then deleted.", on_delete=django.db.models.deletion.CASCADE, related_name='kept_invitations', to='topology.enduser'),
        ),
        migrations.AddConstraint(
            model_name='keptinvitation',
            constraint=models.UniqueConstraint(models.F('user'), models.F('room_jid'), models.F('sender'), models.F('kind'), name='messaging_keptinvitation_unique_room_sender_kind_per_user'),
        ),
    ]
