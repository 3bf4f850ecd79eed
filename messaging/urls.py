from django.urls import path

from imp_admin.views import PlannedPageView

app_name = "messaging"

urlpatterns = [
    path(
        "group-chat/",
        PlannedPageView.as_view(
            title="Group Chat and Persistent Chat",
            planned="Group chat and persistent chat settings per cluster, and the persistent chat "
            "database assignment of every chat node.",
        ),
        name="chatsettings_edit",
    ),
    path(
        "external-databases/",
        PlannedPageView.as_view(
            title="External Databases",
            planned="PostgreSQL, Oracle and SQL Server connections with live reachability, "
            "connectivity and schema checks.",
        ),
        name="externaldatabase_list",
    ),
]
