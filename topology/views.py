"""Pages of System > Presence Topology, Presence Redundancy Groups, Users, Clusters, Nodes."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch
from django.shortcuts import get_object_or_404, redirect
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.generic import DetailView, FormView, TemplateView, View

from imp_admin.generic import ObjectDeleteView, ObjectEditView, ObjectListView
from imp_admin.permissions import ConsolePermissionMixin
from topology import certificates, credentials, filters, forms, tables
from topology.models import Cluster, EndUser, Node, RedundancyGroup
from topology.models.topology import database_assignment_warning
from topology.user_assignment import assign_users

MEMBERS = Prefetch("members", queryset=Node.objects.order_by("group_position"))


class TopologyView(ConsolePermissionMixin, TemplateView):
    """System > Presence Topology: clusters, their groups and nodes, users per node."""

    template_name = "topology/topology.html"
    permission_required = "topology.view_cluster"

    def get_context_data(self, **kwargs):
        nodes = Node.objects.annotate(
            home_user_count=Count("assigned_users", distinct=True),
            backup_user_count=Count("backup_users", distinct=True),
        ).order_by("group_position", "name")
        clusters = Cluster.objects.prefetch_related(
            Prefetch(
                "redundancy_groups",
                queryset=RedundancyGroup.objects.prefetch_related(Prefetch("members", queryset=nodes)),
            ),
            Prefetch("nodes", queryset=nodes.filter(redundancy_group__isnull=True), to_attr="ungrouped_nodes"),
        )
        return super().get_context_data(clusters=clusters, **kwargs)


class ClusterListView(ObjectListView):
    model = Cluster
    table_class = tables.ClusterTable
    filterset_class = filters.ClusterFilter
    add_url_name = "topology:cluster_add"

    def get_queryset(self):
        return Cluster.objects.annotate(
            node_count=Count("nodes", distinct=True), group_count=Count("redundancy_groups", distinct=True)
        ).order_by("name")


class ClusterEditView(ObjectEditView):
    model = Cluster
    form_class = forms.ClusterForm
    list_url_name = "topology:cluster_list"
    delete_url_name = "topology:cluster_delete"


class ClusterDeleteView(ObjectDeleteView):
    model = Cluster
    list_url_name = "topology:cluster_list"


class NodeListView(ObjectListView):
    model = Node
    table_class = tables.NodeTable
    filterset_class = filters.NodeFilter
    add_url_name = "topology:node_add"

    def get_queryset(self):
        return (
            Node.objects.select_related("cluster", "redundancy_group")
            .annotate(user_count=Count("assigned_users"))
            .order_by("cluster__name", "name")
        )


class NodeDetailView(ConsolePermissionMixin, DetailView):
    """A node's page: its configuration, XMPP client port and TLS certificate, HA state and users."""

    model = Node
    template_name = "topology/node_detail.html"
    permission_required = "topology.view_node"
    queryset = Node.objects.select_related("cluster", "redundancy_group", "certificate")

    def get_context_data(self, **kwargs):
        node = self.object
        row = getattr(node, "certificate", None)  # None: no certificate yet
        return super().get_context_data(
            home_users=node.assigned_users.count(),
            backup_users=node.backup_users.count(),
            certificate=certificates.describe(row) if row is not None else None,
            certificate_problems=certificates.certificate_problems(node),
            **kwargs,
        )


@method_decorator(never_cache, name="dispatch")
class NodeCertificateView(ConsolePermissionMixin, FormView):
    """Replace a node's TLS certificate by uploading PEM files; the key is never shown back."""

    permission_required = "topology.view_node"
    change_permission = "topology.change_node"
    form_class = forms.NodeCertificateForm
    template_name = "topology/node_certificate.html"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.object = get_object_or_404(Node.objects.select_related("cluster"), pk=kwargs["pk"])

    def form_valid(self, form):
        data = form.cleaned_data
        try:
            certificates.install_certificate(self.object, data["certificate"], data["key"], data["passphrase"])
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field, errors)
            return self.form_invalid(form)
        messages.success(self.request, f"TLS certificate of {self.object} replaced.")
        for problem in certificates.certificate_problems(Node.objects.select_related("cluster").get(pk=self.object.pk)):
            messages.warning(self.request, problem)
        return redirect(self.object.get_absolute_url())

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            object=self.object, can_save=self.request.user.has_perm(self.change_permission), **kwargs
        )


class NodeEditView(ObjectEditView):
    model = Node
    form_class = forms.NodeForm
    list_url_name = "topology:node_list"
    delete_url_name = "topology:node_delete"


class NodeDeleteView(ObjectDeleteView):
    model = Node
    list_url_name = "topology:node_list"


class RedundancyGroupListView(ObjectListView):
    model = RedundancyGroup
    table_class = tables.RedundancyGroupTable
    filterset_class = filters.RedundancyGroupFilter
    add_url_name = "topology:group_add"

    def get_queryset(self):
        return RedundancyGroup.objects.select_related("cluster").prefetch_related(MEMBERS)


class RedundancyGroupDetailView(ConsolePermissionMixin, DetailView):
    """Presence Redundancy Group Configuration: both nodes' state and reason, Server Action."""

    model = RedundancyGroup
    template_name = "topology/group_detail.html"
    permission_required = "topology.view_redundancygroup"
    queryset = RedundancyGroup.objects.select_related("cluster").prefetch_related(MEMBERS)


class RedundancyGroupEditView(ObjectEditView):
    model = RedundancyGroup
    form_class = forms.RedundancyGroupForm
    list_url_name = "topology:group_list"
    delete_url_name = "topology:group_delete"
    queryset = RedundancyGroup.objects.prefetch_related(MEMBERS)

    def form_valid(self, form):
        response = super().form_valid(form)
        warning = database_assignment_warning(RedundancyGroup.objects.prefetch_related(MEMBERS).get(pk=self.object.pk))
        if warning:
            messages.warning(self.request, warning)
        return response


class RedundancyGroupDeleteView(ObjectDeleteView):
    """Delete a group: its servers move out of it (refused while one is failed over)."""

    model = RedundancyGroup
    list_url_name = "topology:group_list"

    def get_context_data(self, **kwargs):
        servers = [str(node) for node in self.object.servers() if node is not None]
        note = (
            f"Its servers {' and '.join(servers)} leave the group and stay, with their users and chat databases, "
            "outside any group."
            if servers
            else ""
        )
        return super().get_context_data(delete_note=self.object.delete_refusal() or note, **kwargs)


class EndUserListView(ObjectListView):
    model = EndUser
    table_class = tables.EndUserTable
    filterset_class = filters.EndUserFilter
    add_url_name = "topology:user_add"
    template_name = "topology/enduser_list.html"

    def get_queryset(self):
        return EndUser.objects.select_related("assigned_node", "active_node")

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            assign_form=forms.AssignUsersForm(),
            can_assign=self.request.user.has_perm("topology.change_enduser"),
            **kwargs,
        )


class EndUserEditView(ObjectEditView):
    """The user's page: identity and home node, and beside them the chat password's state."""

    model = EndUser
    form_class = forms.EndUserForm
    template_name = "topology/enduser_edit.html"
    list_url_name = "topology:user_list"
    delete_url_name = "topology:user_delete"


@method_decorator(never_cache, name="dispatch")
class EndUserPasswordView(ConsolePermissionMixin, FormView):
    """Set an end user's chat password (typed twice). The audit trail records when, not what."""

    permission_required = "topology.view_enduser"
    change_permission = "topology.change_enduser"
    form_class = forms.SetPasswordForm
    template_name = "topology/enduser_password.html"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self.object = get_object_or_404(EndUser, pk=kwargs["pk"])

    def form_valid(self, form):
        credentials.set_password(self.object, form.cleaned_data["password"])
        messages.success(self.request, f"Password of {self.object.user_id} set.")
        return redirect(self.object.get_absolute_url())

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            object=self.object, can_save=self.request.user.has_perm(self.change_permission), **kwargs
        )


class EndUserDeleteView(ObjectDeleteView):
    model = EndUser
    list_url_name = "topology:user_list"


class AssignUsersView(ConsolePermissionMixin, View):
    """Apply the cluster's User Assignment Mode to its users (POST only)."""

    permission_required = "topology.view_enduser"
    change_permission = "topology.change_enduser"
    http_method_names = ["post"]

    def post(self, request):
        form = forms.AssignUsersForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose the cluster whose users to assign.")
            return redirect("topology:user_list")
        cluster = form.cleaned_data["cluster"]
        counts = assign_users(cluster)
        mode = cluster.get_user_assignment_mode_display()
        if not counts:
            messages.warning(
                request,
                f"No users assigned: the mode of {cluster} is {mode}, or it has no node in a redundancy group.",
            )
        else:
            summary = ", ".join(f"{node}: {count}" for node, count in sorted(counts.items(), key=lambda i: i[0].name))
            messages.success(request, f"Users of {cluster} assigned ({mode}): {summary}.")
        return redirect("topology:user_list")
