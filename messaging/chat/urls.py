from django.urls import path

from messaging.chat import views

app_name = "chat"

urlpatterns = [
    path("", views.RoomReportView.as_view(), name="room_list"),
    path("<int:database_pk>/<str:room_jid>/", views.RoomDetailView.as_view(), name="room_detail"),
    path("<int:database_pk>/<str:room_jid>/delete/", views.RoomDeleteView.as_view(), name="room_delete"),
]
