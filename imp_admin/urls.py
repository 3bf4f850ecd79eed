from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from api.views import ApiTokenRevokeView, ApiTokensView
from imp_admin import metrics, views

handler404 = "api.errors.not_found"

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("audit/", views.AuditTrailView.as_view(), name="audit_list"),
    path("lockouts/", views.LockoutListView.as_view(), name="lockout_list"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
    path("account/api-tokens/", ApiTokensView.as_view(), name="api_tokens"),
    path("account/api-tokens/<int:pk>/revoke/", ApiTokenRevokeView.as_view(), name="api_token_revoke"),
    path("", include("topology.urls")),
    path("messaging/", include("messaging.urls")),
    path("messaging/jobs/", include("dbmerge.urls")),
    path("messaging/rooms/", include("messaging.chat.urls")),
]
