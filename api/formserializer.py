"""Serializers that validate and save through the console's own forms.

The serializer's fields describe the resource (and so the OpenAPI schema); the input is
handed, as it came, to the same ``ModelForm`` the console's page uses. Its ``clean_*``
methods, the model's validators and ``clean()`` and the unique checks therefore run with the
same messages, and ``form.save()`` does what the page's save does.
"""

from __future__ import annotations

from collections.abc import Mapping

from django import forms
from django.db import models
from rest_framework import serializers

from api.errors import NON_FIELD


def form_errors(form: forms.BaseForm) -> dict[str, list[str]]:
    """A form's errors as the API answers them (``__all__`` becomes ``non_field_errors``)."""
    return {(NON_FIELD if name == "__all__" else name): list(messages) for name, messages in form.errors.items()}


SCALAR_ONLY = "Send one value here, not a list or an object."


def form_data(form: forms.BaseForm, values: dict) -> dict:
    """``values`` as an HTML form posts them: one string per field (a list for a multiple
    choice), so a form field never meets a JSON type it was not written for. A list or an
    object where one value belongs is refused with a field error."""
    data, errors = {}, {}
    for name, value in values.items():
        field = form.fields.get(name)
        if isinstance(field, forms.MultipleChoiceField | forms.ModelMultipleChoiceField):
            data[form.add_prefix(name)] = [str(v) for v in value] if isinstance(value, list) else value
            continue
        if isinstance(value, list | dict):
            errors[name] = [SCALAR_ONLY]
            continue
        if not isinstance(field, forms.BooleanField):
            value = "" if value is None else str(value)
        data[form.add_prefix(name)] = value
    if errors:
        raise serializers.ValidationError(errors)
    return data


def plain(value):
    """A value as a form's data holds it: model instances by primary key."""
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


class FormSerializer(serializers.ModelSerializer):
    """A ``ModelSerializer`` whose input goes through ``Meta.form_class``.

    Creating starts from the form's initial values (the model's defaults), changing from the
    object's current values; the fields sent replace them (PATCH semantics).
    """

    def get_validators(self):
        return []  # the form's unique checks speak for the model

    def form_kwargs(self) -> dict:
        return {"instance": self.instance} if self.instance is not None else {}

    def current_values(self, form: forms.BaseForm) -> dict:
        """The form's data for the fields not sent."""
        values = {name: form.get_initial_for_field(field, name) for name, field in form.fields.items()}
        return {name: plain(value) for name, value in values.items() if value is not None}

    def to_internal_value(self, data):
        if not isinstance(data, Mapping):
            raise serializers.ValidationError({NON_FIELD: ["Send a JSON object."]})
        form_class = self.Meta.form_class
        blank = form_class(**self.form_kwargs())
        writable = {name for name, field in self.fields.items() if not field.read_only}
        accepted = writable | set(self.extra_form_inputs())
        sent = {name: value for name, value in data.items() if name in blank.fields and name in accepted}
        self.form = form_class(data=form_data(blank, {**self.current_values(blank), **sent}), **self.form_kwargs())
        if not self.form.is_valid():
            raise serializers.ValidationError(form_errors(self.form))
        return dict(self.form.cleaned_data)

    def extra_form_inputs(self) -> tuple[str, ...]:
        """Form fields accepted in the input that the resource does not show."""
        return ()

    def create(self, validated_data):
        return self.form.save()

    def update(self, instance, validated_data):
        return self.form.save()
