from django.urls import path

from mailbox import views, views_compose, views_conversation, views_sending

urlpatterns = [
    path("", views.thread_list, name="inbox"),
    path("label/<int:label_id>/", views.thread_list, name="label"),
    path("starred/", views.starred_list, name="starred"),
    path("all/", views.all_mail_list, name="all_mail"),
    path("threads/action/", views.threads_action, name="threads_action"),
    path("undo/", views.undo, name="undo"),
    path("t/<int:thread_id>/row/", views.thread_row, name="thread_row"),
    path("events/", views.events_since, name="events_since"),
    path("labels/", views.labels, name="labels"),
    path("labels/<int:label_id>/", views.label_edit, name="label_edit"),
    path("labels/<int:label_id>/delete/", views.label_delete, name="label_delete"),
    path("settings/", views.settings_view, name="settings"),
    path("search/", views.search, name="search"),
    path("compose/", views_compose.compose, name="compose"),
    path("drafts/", views_compose.drafts, name="drafts"),
    path("drafts/autosave/", views_compose.draft_autosave, name="draft_autosave"),
    path("drafts/<int:draft_id>/", views_compose.draft, name="draft"),
    path("drafts/<int:draft_id>/attachments/", views_compose.draft_attachment_upload, name="draft_attachment_upload"),
    path("contacts/autocomplete/", views_compose.contacts_autocomplete, name="contacts_autocomplete"),
    path("t/<int:thread_id>/", views_conversation.thread_detail, name="thread_detail"),
    path("m/<int:message_id>/body/", views_conversation.message_body, name="message_body"),
    path("m/<int:message_id>/a/<int:attachment_id>/", views_conversation.attachment, name="attachment"),
    path("m/<int:message_id>/cid/<path:content_id>/", views_conversation.inline_image, name="inline_image"),
    path("m/<int:message_id>/images/always/", views_conversation.remote_images_always, name="remote_images_always"),
    path("m/<int:message_id>/undo-send/", views_sending.message_send_undo, name="message_send_undo"),
    path("m/<int:message_id>/deliveries/", views_conversation.delivery_timeline, name="delivery_timeline"),
    path("scheduled/", views_sending.scheduled, name="scheduled"),
    path("proxy/image/", views_conversation.image_proxy, name="image_proxy"),
]
