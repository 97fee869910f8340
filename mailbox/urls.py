from django.urls import path

from mailbox import views, views_conversation

urlpatterns = [
    path("", views.thread_list, name="inbox"),
    path("label/<int:label_id>/", views.thread_list, name="label"),
    path("t/<int:thread_id>/", views_conversation.thread_detail, name="thread_detail"),
    path("m/<int:message_id>/body/", views_conversation.message_body, name="message_body"),
    path("m/<int:message_id>/a/<int:attachment_id>/", views_conversation.attachment, name="attachment"),
    path("m/<int:message_id>/cid/<path:content_id>/", views_conversation.inline_image, name="inline_image"),
    path("m/<int:message_id>/images/always/", views_conversation.remote_images_always, name="remote_images_always"),
    path("proxy/image/", views_conversation.image_proxy, name="image_proxy"),
]
