"""Generic object views (NetBox style): list with filters and a table, edit, delete.

Each takes its permissions from the model: ``view_<model>`` to see a page, ``add_`` or
``change_`` to save, ``delete_`` to delete.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.shortcuts import redirect
from django.urls import reverse
from django.views.generic import DeleteView, UpdateView
from django_filters.views import FilterView
from django_tables2.views import SingleTableMixin

from imp_admin.permissions import ConsolePermissionMixin


def _perm(model, action: str) -> str:
    return f"{model._meta.app_label}.{action}_{model._meta.model_name}"


def style_widgets(form: forms.Form) -> forms.Form:
    """Give a form's widgets Bootstrap's classes (filter forms are not rendered by crispy)."""
    for field in form.fields.values():
        widget = field.widget
        css = "form-select form-select-sm" if isinstance(widget, forms.Select) else "form-control form-control-sm"
        widget.attrs.setdefault("class", css)
    return form


class ObjectListView(ConsolePermissionMixin, SingleTableMixin, FilterView):
    """Find and List: a filter form, a sortable table, pagination."""

    template_name = "generic/object_list.html"
    paginate_by = 50
    add_url_name: str | None = None

    def get_permission_required(self):
        self.permission_required = _perm(self.model, "view")
        return super().get_permission_required()

    def get_filterset(self, filterset_class):
        filterset = super().get_filterset(filterset_class)
        style_widgets(filterset.form)
        return filterset

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        opts = self.model._meta
        context.update(
            title=f"Find and List {opts.verbose_name_plural.title()}",
            add_url=reverse(self.add_url_name) if self.add_url_name else None,
            can_add=self.request.user.has_perm(_perm(self.model, "add")),
            verbose_name=opts.verbose_name,
        )
        return context


class ObjectEditView(ConsolePermissionMixin, UpdateView):
    """Add New when there is no ``pk`` in the URL, Edit otherwise."""

    template_name = "generic/object_edit.html"
    list_url_name: str = ""
    delete_url_name: str | None = None

    def get_object(self, queryset=None):
        return super().get_object(queryset) if "pk" in self.kwargs else None

    def get_permission_required(self):
        self.permission_required = _perm(self.model, "view")
        self.change_permission = _perm(self.model, "change" if "pk" in self.kwargs else "add")
        return super().get_permission_required()

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, f"{self.model._meta.verbose_name.capitalize()} {self.object} saved.")
        return response

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        opts = self.model._meta
        context.update(
            title=(
                f"{opts.verbose_name.title()} Configuration" if self.object else f"Add New {opts.verbose_name.title()}"
            ),
            list_url=reverse(self.list_url_name),
            can_save=self.request.user.has_perm(self.change_permission),
            delete_url=reverse(self.delete_url_name, args=[self.object.pk])
            if self.object and self.delete_url_name and self.request.user.has_perm(_perm(self.model, "delete"))
            else None,
        )
        return context


class ObjectDeleteView(ConsolePermissionMixin, DeleteView):
    """Delete after a confirmation; refuses, with the reason, while something depends on it."""

    template_name = "generic/object_delete.html"
    list_url_name: str = ""

    def get_permission_required(self):
        self.permission_required = _perm(self.model, "view")
        self.change_permission = _perm(self.model, "delete")
        return super().get_permission_required()

    def get_success_url(self):
        return reverse(self.list_url_name)

    def form_valid(self, form):
        name = str(self.object)
        try:
            self.object.delete()
        except ValidationError as exc:  # the model refuses, saying why (a group mid-failover)
            messages.error(self.request, " ".join(exc.messages))
            return redirect(self.object.get_absolute_url())
        except ProtectedError as exc:
            blockers = ", ".join(sorted({str(obj) for obj in exc.protected_objects})[:5])
            messages.error(self.request, f"{name} cannot be deleted while these depend on it: {blockers}.")
            return redirect(self.object.get_absolute_url())
        messages.success(self.request, f"{self.model._meta.verbose_name.capitalize()} {name} deleted.")
        return redirect(self.get_success_url())
