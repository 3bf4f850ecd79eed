"""The Add Merge Job form (reference 6.2): what to merge into what, and how."""

from __future__ import annotations

from django import forms

from dbmerge.choices import AVAILABLE_FEATURE_TABLES, FeatureTable, MergeDatabaseType, MergeMethod
from dbmerge.models.jobs import SAME_SOURCES_MESSAGE, SELECTION_FIELDS
from dbmerge.validation import MSSQL_REFUSED
from messaging.models import DatabaseType, ExternalDatabase

FEATURE_TABLES_MESSAGE = "Only Text Conference (TC) tables can be merged; the other feature tables are not available."
DATABASE_FIELDS = ("source_1", "source_2", "target")


def with_article(word: str) -> str:
    """``word`` after "a" or "an", as it is spoken: "an Oracle", "a Postgres"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


class DatabaseChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ExternalDatabase) -> str:
        return f"{obj.hostname} – {obj.database_name} ({obj.get_db_type_display()})"


class MergeJobForm(forms.Form):
    """The drop-downs offer the external databases of the chosen Database Type only; any
    configured database is still accepted as input, so that ``clean`` can say why one of
    another type (SQL Server above all) is refused, whatever sent it."""

    db_type = forms.ChoiceField(
        label="Database Type",
        choices=MergeDatabaseType.choices,
        initial=MergeDatabaseType.POSTGRES,
        error_messages={"invalid_choice": MSSQL_REFUSED + " Choose Oracle or Postgres."},
    )
    source_1 = DatabaseChoiceField(label="Source database 1", queryset=ExternalDatabase.objects.all())
    source_2 = DatabaseChoiceField(label="Source database 2", queryset=ExternalDatabase.objects.all())
    target = DatabaseChoiceField(label="Destination database", queryset=ExternalDatabase.objects.all())
    tablespace = forms.CharField(label="Tablespace name", max_length=128, required=False, help_text="Oracle only.")
    database_name = forms.CharField(
        label="Database name", max_length=128, required=False, help_text="The destination's database name."
    )
    feature_tables = forms.MultipleChoiceField(
        label="Feature Tables",
        choices=FeatureTable.choices,
        initial=[FeatureTable.TEXT_CONFERENCE],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Select Text Conference (TC)."},
    )
    method = forms.ChoiceField(
        label="Transfer method (Postgres)", choices=MergeMethod.choices, initial=MergeMethod.COPY, required=False
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        offered = list(ExternalDatabase.objects.filter(db_type=self.chosen_type))
        for name in DATABASE_FIELDS:
            field = self.fields[name]
            field.widget.choices = [("", field.empty_label)] + [
                (database.pk, field.label_from_instance(database)) for database in offered
            ]

    @property
    def chosen_type(self) -> MergeDatabaseType:
        """The Database Type the drop-downs are for: as submitted, else as first shown."""
        chosen = self.data.get("db_type") if self.is_bound else self.initial.get("db_type")
        return MergeDatabaseType(chosen) if chosen in MergeDatabaseType.values else MergeDatabaseType.POSTGRES

    def clean_feature_tables(self) -> str:
        chosen = set(self.cleaned_data["feature_tables"])
        if not chosen <= AVAILABLE_FEATURE_TABLES:
            raise forms.ValidationError(FEATURE_TABLES_MESSAGE)
        return FeatureTable.TEXT_CONFERENCE

    def clean(self) -> dict:
        data = super().clean()
        db_type = data.get("db_type")
        roles = {name: data.get(name) for name in DATABASE_FIELDS}
        if db_type:
            for name, database in roles.items():
                if database is None:
                    continue
                if database.db_type == DatabaseType.MSSQL:
                    self.add_error(name, f"{database} is a Microsoft SQL Server database. {MSSQL_REFUSED}")
                elif database.db_type != db_type:
                    self.add_error(
                        name,
                        f"{database} is not {with_article(MergeDatabaseType(db_type).label)} database; "
                        "choose one that is.",
                    )
        if roles["source_1"] and roles["source_1"] == roles["source_2"]:
            self.add_error("source_2", SAME_SOURCES_MESSAGE)
        target = roles["target"]
        if target is not None:
            name = data.get("database_name") or target.database_name
            if name != target.database_name:
                self.add_error(
                    "database_name",
                    f"The database name must be that of the destination database ({target.database_name}).",
                )
            data["database_name"] = name
        if db_type == MergeDatabaseType.ORACLE:
            if not data.get("tablespace"):
                self.add_error("tablespace", "Enter the destination's tablespace name (Oracle).")
            data["method"] = MergeMethod.COPY
        else:
            data["tablespace"] = ""
            data["method"] = data.get("method") or MergeMethod.COPY
        return data

    def selection(self) -> dict:
        """What a validation of this form vouches for (a valid form only)."""
        return {name: self.cleaned_data[name] for name in SELECTION_FIELDS}
