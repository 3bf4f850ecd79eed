"""External Database Settings (reference 5.1): the console form and the Django admin form."""

from __future__ import annotations

import ipaddress

from django import forms
from django.core.exceptions import ValidationError

from messaging.models import DatabaseType, ExternalDatabase
from messaging.models.databases import DEFAULT_PORTS, ORACLE_SSL_PORT
from topology.models.topology import hostname_validator

MAX_PASSWORD_LENGTH = 30

PASSWORD_MISMATCH = "Password and Confirm Password do not match."  # noqa: S105 (a message)
PASSWORD_TOO_LONG = f"The password can be at most {MAX_PASSWORD_LENGTH} characters."
PASSWORD_REQUIRED = "Enter the password of the database user."  # noqa: S105 (a message)
SSL_NOT_FOR_POSTGRES = (
    "Enable SSL is available for Oracle and Microsoft SQL Server only; PostgreSQL connections do not use SSL."
)
TABLESPACE_REQUIRED = "Enter the tablespace of the Oracle user (SELECT DEFAULT_TABLESPACE FROM DBA_USERS …)."
TABLESPACE_ORACLE_ONLY = "Tablespace applies to Oracle databases only; leave it empty."
CERTIFICATE_ORACLE_SSL_ONLY = "Certificate Name applies to Oracle with SSL enabled only."
WINDOWS_AUTH_MSSQL_ONLY = "Windows authentication applies to Microsoft SQL Server only."
DOMAIN_REQUIRED = "Enter the Windows domain of the user for Windows authentication."
PORT_RANGE = "Enter a port number from 1 to 65535."
HOSTNAME_INVALID = (
    "Enter a host name, an IPv4 address or an IPv6 address, such as db1.example.com, 192.0.2.10 or 2001:db8::10."
)


def default_port(db_type: str, enable_ssl: bool) -> int | None:
    """The port a database type listens on by default (reference 5.1)."""
    if db_type == DatabaseType.ORACLE and enable_ssl:
        return ORACLE_SSL_PORT
    return DEFAULT_PORTS.get(db_type)


class ExternalDatabaseForm(forms.ModelForm):
    """Add New / edit an external database. The password is never rendered back: an empty
    password on an edit keeps the stored one."""

    password = forms.CharField(
        label="Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=f"At most {MAX_PASSWORD_LENGTH} characters. Leave empty to keep the stored password.",
    )
    confirm_password = forms.CharField(
        label="Confirm Password",
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    port = forms.IntegerField(
        label="Port Number",
        required=False,
        help_text="Pre-filled by type: Postgres 5432, Oracle 1521 (2484 with SSL), Microsoft SQL Server 1433.",
        error_messages={"invalid": PORT_RANGE},
    )

    class Meta:
        model = ExternalDatabase
        fields = [
            "database_name",
            "db_type",
            "tablespace",
            "username",
            "password",
            "confirm_password",
            "hostname",
            "port",
            "enable_ssl",
            "certificate_name",
            "windows_authentication",
            "domain",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.connection_changed = False
        self.fields["db_type"].widget.attrs["data-default-ports"] = (
            '{"postgres": 5432, "oracle": 1521, "oracle_ssl": 2484, "mssql": 1433}'
        )
        if not self.instance.pk:
            self.fields["password"].help_text = f"At most {MAX_PASSWORD_LENGTH} characters."
        self.fields["windows_authentication"].help_text = (
            "SQL Server only. Logs in through Kerberos as User Name@Domain: the host of the Celery workers and "
            "node agents needs a ticket for that user (kinit); the password is then not sent."
        )

    def clean_hostname(self) -> str:
        value = self.cleaned_data["hostname"].strip()
        try:
            return str(ipaddress.ip_address(value.strip("[]")))
        except ValueError:
            pass
        try:
            hostname_validator(value)
        except ValidationError:
            raise ValidationError(HOSTNAME_INVALID) from None
        return value.lower()

    def clean_port(self) -> int | None:
        port = self.cleaned_data.get("port")
        if port is not None and not 1 <= port <= 65535:
            raise ValidationError(PORT_RANGE)
        return port

    def clean(self):
        cleaned = super().clean()
        db_type = cleaned.get("db_type")
        password, confirm = cleaned.get("password") or "", cleaned.get("confirm_password") or ""
        if password or confirm or not self.instance.pk:
            if not password:
                self.add_error("password", PASSWORD_REQUIRED)
            elif len(password) > MAX_PASSWORD_LENGTH:
                self.add_error("password", PASSWORD_TOO_LONG)
            elif password != confirm:
                self.add_error("confirm_password", PASSWORD_MISMATCH)
        if cleaned.get("enable_ssl") and db_type == DatabaseType.POSTGRES:
            self.add_error("enable_ssl", SSL_NOT_FOR_POSTGRES)
        if db_type == DatabaseType.ORACLE and not cleaned.get("tablespace"):
            self.add_error("tablespace", TABLESPACE_REQUIRED)
        if db_type and db_type != DatabaseType.ORACLE and cleaned.get("tablespace"):
            self.add_error("tablespace", TABLESPACE_ORACLE_ONLY)
        if cleaned.get("certificate_name") and not (db_type == DatabaseType.ORACLE and cleaned.get("enable_ssl")):
            self.add_error("certificate_name", CERTIFICATE_ORACLE_SSL_ONLY)
        if cleaned.get("windows_authentication"):
            if db_type != DatabaseType.MSSQL:
                self.add_error("windows_authentication", WINDOWS_AUTH_MSSQL_ONLY)
            elif not cleaned.get("domain"):
                self.add_error("domain", DOMAIN_REQUIRED)
        if db_type and cleaned.get("port") is None and "port" not in self.errors:
            cleaned["port"] = default_port(db_type, bool(cleaned.get("enable_ssl")))
            self.instance.port = cleaned["port"]
        return cleaned

    def save(self, commit: bool = True) -> ExternalDatabase:
        database = super().save(commit=False)
        if self.cleaned_data.get("password"):
            database.set_password(self.cleaned_data["password"])
        if commit:
            from messaging.status import save_database

            self.connection_changed = save_database(database)
        return database
