from django.urls import path

from topology import views, views_alarms, views_ha, views_services

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
    path("system/nodes/<int:pk>/certificate/", views.NodeCertificateView.as_view(), name="node_certificate"),
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
    path("system/users/<int:pk>/password/", views.EndUserPasswordView.as_view(), name="user_password"),
    path("system/users/<int:pk>/delete/", views.EndUserDeleteView.as_view(), name="user_delete"),
    path(
        "system/redundancy-groups/<int:pk>/server-action/",
        views_ha.GroupServerActionView.as_view(),
        name="group_server_action",
    ),
    path("system/redundancy-groups/<int:pk>/ha/", views_ha.GroupHAPanelView.as_view(), name="group_ha"),
    path("system/alarm-recipients/", views_alarms.AlarmRecipientListView.as_view(), name="alarmrecipient_list"),
    path("system/alarm-recipients/add/", views_alarms.AlarmRecipientEditView.as_view(), name="alarmrecipient_add"),
    path(
        "system/alarm-recipients/<int:pk>/", views_alarms.AlarmRecipientEditView.as_view(), name="alarmrecipient_edit"
    ),
    path(
        "system/alarm-recipients/<int:pk>/delete/",
        views_alarms.AlarmRecipientDeleteView.as_view(),
        name="alarmrecipient_delete",
    ),
    path("system/service-parameters/", views_services.ServiceParametersView.as_view(), name="serviceparameters_edit"),
    path(
        "serviceability/control-center/feature/",
        views_services.FeatureServicesView.as_view(),
        name="controlcenter_feature",
    ),
    path(
        "serviceability/control-center/network/",
        views_services.NetworkServicesView.as_view(),
        name="controlcenter_network",
    ),
    path(
        "serviceability/service-activation/",
        views_services.ServiceActivationView.as_view(),
        name="serviceactivation",
    ),
]
