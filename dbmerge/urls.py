from django.urls import path

from dbmerge import views

app_name = "dbmerge"

urlpatterns = [
    path("", views.MergeJobListView.as_view(), name="mergejob_list"),
    path("merge/add/", views.MergeJobAddView.as_view(), name="mergejob_add"),
    path("merge/<int:pk>/", views.MergeJobDetailView.as_view(), name="mergejob_detail"),
    path("merge/<int:pk>/status/", views.MergeJobStatusView.as_view(), name="mergejob_status"),
    path("merge/<int:pk>/merge/", views.MergeJobMergeView.as_view(), name="mergejob_merge"),
    path("merge/<int:pk>/cancel/", views.MergeJobCancelView.as_view(), name="mergejob_cancel"),
    path("merge/<int:pk>/delete/", views.MergeJobDeleteView.as_view(), name="mergejob_delete"),
]
