from django.urls import path

from imp_admin.views import PlannedPageView

app_name = "dbmerge"

urlpatterns = [
    path(
        "",
        PlannedPageView.as_view(
            title="External Database Jobs",
            planned="External database merge jobs: validate, merge two per-node persistent chat "
            "databases into one, follow progress live.",
        ),
        name="mergejob_list",
    ),
]
