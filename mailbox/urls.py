from django.urls import path

from mailbox import views

urlpatterns = [
    path("", views.thread_list, name="inbox"),
    path("label/<int:label_id>/", views.thread_list, name="label"),
    path("search/", views.search, name="search"),
]
