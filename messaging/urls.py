from django.urls import path

from messaging import views

app_name = "messaging"

urlpatterns = [
    path("group-chat/", views.ChatSettingsView.as_view(), name="chatsettings_edit"),
    path("group-chat/aliases/", views.ChatAliasListView.as_view(), name="chatalias_list"),
    path("group-chat/aliases/delete/", views.ChatAliasBulkDeleteView.as_view(), name="chatalias_bulk_delete"),
    path("group-chat/aliases/add/", views.ChatAliasEditView.as_view(), name="chatalias_add"),
    path("group-chat/aliases/<int:pk>/", views.ChatAliasEditView.as_view(), name="chatalias_edit"),
    path("group-chat/aliases/<int:pk>/delete/", views.ChatAliasDeleteView.as_view(), name="chatalias_delete"),
    path(
        "group-chat/administrators/",
        views.GroupChatAdministratorListView.as_view(),
        name="groupchatadministrator_list",
    ),
    path(
        "group-chat/administrators/enable/",
        views.GroupChatAdministratorEnableView.as_view(),
        name="groupchatadministrator_enable",
    ),
    path(
        "group-chat/administrators/add/",
        views.GroupChatAdministratorEditView.as_view(),
        name="groupchatadministrator_add",
    ),
    path(
        "group-chat/administrators/<int:pk>/",
        views.GroupChatAdministratorEditView.as_view(),
        name="groupchatadministrator_edit",
    ),
    path(
        "group-chat/administrators/<int:pk>/delete/",
        views.GroupChatAdministratorDeleteView.as_view(),
        name="groupchatadministrator_delete",
    ),
    path("external-databases/", views.ExternalDatabaseListView.as_view(), name="externaldatabase_list"),
    path("external-databases/add/", views.ExternalDatabaseEditView.as_view(), name="externaldatabase_add"),
    path("external-databases/<int:pk>/", views.ExternalDatabaseDetailView.as_view(), name="externaldatabase_detail"),
    path("external-databases/<int:pk>/edit/", views.ExternalDatabaseEditView.as_view(), name="externaldatabase_edit"),
    path(
        "external-databases/<int:pk>/delete/",
        views.ExternalDatabaseDeleteView.as_view(),
        name="externaldatabase_delete",
    ),
    path(
        "external-databases/<int:pk>/status/",
        views.ExternalDatabaseStatusView.as_view(),
        name="externaldatabase_status",
    ),
    path(
        "external-databases/<int:pk>/check/", views.ExternalDatabaseCheckView.as_view(), name="externaldatabase_check"
    ),
    path(
        "external-databases/<int:pk>/install-schema/",
        views.ExternalDatabaseInstallView.as_view(),
        name="externaldatabase_install",
    ),
    path("web-chat/", views.WebChatView.as_view(), name="webchat"),
    path("verify-ha/", views.VerifyHAView.as_view(), name="verify_ha"),
    path("verify-ha/results/", views.VerifyHAResultsView.as_view(), name="verify_ha_results"),
]
