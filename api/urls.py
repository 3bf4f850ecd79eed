"""``/api/``: the REST API, its OpenAPI schema and Swagger UI (served locally)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import APIRootView, DefaultRouter

from api import audit, databases, ha, lockouts, merge, messaging, rooms, services, topology
from api.views import ANY_ROLE

app_name = "api"


class ApiRootView(APIRootView):
    """``/api/``: the list of endpoints, for every user with a role (each endpoint checks its own)."""

    def required_permissions(self, request) -> tuple[str, ...]:
        return (ANY_ROLE,)


router = DefaultRouter()
router.APIRootView = ApiRootView
router.register("clusters", topology.ClusterViewSet)
router.register("nodes", topology.NodeViewSet)
router.register("node-service-parameters", services.NodeServiceParametersViewSet, basename="nodeserviceparameters")
router.register("redundancy-groups", topology.RedundancyGroupViewSet)
router.register("end-users", topology.EndUserViewSet)
router.register("services", services.ServiceViewSet)
router.register("service-parameters", services.ServiceParametersViewSet, basename="serviceparameters")
router.register("server-actions", ha.ServerActionViewSet)
router.register("ha-transitions", ha.HATransitionViewSet)
router.register("srm-alarms", ha.HAAlarmViewSet)
router.register("alarm-recipients", ha.AlarmRecipientViewSet)
router.register("chat-settings", messaging.ChatSettingsViewSet, basename="chatsettings")
router.register("chat-database-assignments", messaging.ChatDatabaseAssignmentViewSet, basename="chatdatabaseassignment")
router.register("chat-aliases", messaging.ChatAliasViewSet)
router.register("group-chat-administrators", messaging.GroupChatAdministratorViewSet)
router.register("external-databases", databases.ExternalDatabaseViewSet)
router.register("verify-ha", databases.VerifyHAViewSet, basename="verify-ha")
router.register("merge-jobs", merge.MergeJobViewSet)
router.register("rooms", rooms.RoomReportViewSet, basename="room")
router.register("audit", audit.AuditTrailViewSet)
router.register("lockouts", lockouts.LockoutViewSet, basename="lockout")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
    path("", include(router.urls)),
]
