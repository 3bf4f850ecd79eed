from django.urls import path

from imp_admin.views import PlannedPageView
from topology import views

app_name = "topology"

urlpatterns = [
    path("system/topology/", views.TopologyView.as_view(), name="overview"),
    path("system/clusters/", views.ClusterListView.as_view(), name="cluster_list"),
    path("system/clusters/add/", views.ClusterEditView.as_view(), name="cluster_add"),
    path("system/clusters/<int:pk>/", views.ClusterEditView.as_view(), name="cluster_edit"),
    path("system/clusters/<int:pk>/delete/", views.ClusterDeleteView.as_view(), name="cluster_delete"),
    path("system/nodes/", views.NodeListView.as_view(), name="node_list"),
    path("system/nodes/add/", views.NodeEditView.as_view(), name="node_add"),
    path("system/nodes/<int:pk>/", views.NodeDetailView.as_view(), name="node_detail"),
    path("system/nodes/<int:pk>/edit/", views.NodeEditView.as_view(), name="node_edit"),
    path("system/nodes/<int:pk>/delete/", views.NodeDeleteView.as_view(), name="node_delete"),
    path("system/redundancy-groups/", views.RedundancyGroupListView.as_view(), name="group_list"),
    path("system/redundancy-groups/add/", views.RedundancyGroupEditView.as_view(), name="group_add"),
    path("system/redundancy-groups/<int:pk>/", views.RedundancyGroupDetailView.as_view(), name="group_detail"),
    path("system/redundancy-groups/<int:pk>/edit/", views.RedundancyGroupEditView.as_view(), name="group_edit"),
    path("system/redundancy-groups/<int:pk>/delete/", views.RedundancyGroupDeleteView.as_view(), name="group_delete"),
    path("system/users/", views.EndUserListView.as_view(), name="user_list"),
    path("system/users/add/", views.EndUserEditView.as_view(), name="user_add"),
    path("system/users/assign/", views.AssignUsersView.as_view(), name="user_assign"),
    path("system/users/<int:pk>/", views.EndUserEditView.as_view(), name="user_edit"),
    path("system/users/<int:pk>/delete/", views.EndUserDeleteView.as_view(), name="user_delete"),
    path(
        "system/service-parameters/",
        PlannedPageView.as_view(
            title="Service Parameters",
            planned="Cisco Server Recovery Manager parameters: heartbeat interval and timeouts, "
            "critical service delay, automatic fallback, client re-login limits.",
        ),
        name="serviceparameters_edit",
    ),
    path(
        "serviceability/control-center/feature/",
        PlannedPageView.as_view(
            title="Control Center – Feature Services",
            planned="Start, stop and restart each node's feature services (Cisco XCP Text Conference "
            "Manager…) with the status the node agent observes.",
        ),
        name="controlcenter_feature",
    ),
    path(
        "serviceability/control-center/network/",
        PlannedPageView.as_view(
            title="Control Center – Network Services",
            planned="Start, stop and restart each node's network services (Cisco XCP Router, Cisco "
            "Server Recovery Manager…) with the status the node agent observes.",
        ),
        name="controlcenter_network",
    ),
]
