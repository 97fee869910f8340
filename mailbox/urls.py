from django.urls import path

from mailbox import views, views_compose

urlpatterns = [
    path("", views.thread_list, name="inbox"),
    path("label/<int:label_id>/", views.thread_list, name="label"),
    path("compose/", views_compose.compose, name="compose"),
    path("drafts/", views_compose.drafts, name="drafts"),
    path("drafts/autosave/", views_compose.draft_autosave, name="draft_autosave"),
    path("drafts/<int:draft_id>/", views_compose.draft, name="draft"),
    path("drafts/<int:draft_id>/attachments/", views_compose.draft_attachment_upload, name="draft_attachment_upload"),
    path("contacts/autocomplete/", views_compose.contacts_autocomplete, name="contacts_autocomplete"),
]
