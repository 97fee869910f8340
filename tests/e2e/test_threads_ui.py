"""Correcting conversations in a real browser: split a message off, merge conversations from the
list, and what other open tabs see live — a merged-away conversation moves to the survivor, a list
drops the merged row; a label deleted in one tab leaves the others' sidebar, chips and menus."""

import re

from playwright.sync_api import expect

from mailbox.models import Message
from mailbox.services import message_import_raw, messages_label_add
from mailbox.services.preferences import user_label_create
from tests.e2e.conftest import log_in, off_loop, screenshot
from tests.threads.builders import raw_mail
from threads.models import Thread


def _deliver(mailbox, message_id: str, subject: str, hour: int, **headers) -> Message:
    raw = raw_mail(message_id, subject, date=f"Mon, 02 Nov 2026 {hour:02d}:00:00 +0000", **headers)
    return off_loop(message_import_raw, mailbox=mailbox, raw=raw, source_tag="test").message


def _reply(mailbox, message_id: str, parent: Message, hour: int, **headers) -> Message:
    chain = (*parent.references, parent.message_id)
    return _deliver(
        mailbox, message_id, f"Re: {parent.subject}", hour, in_reply_to=parent.message_id, references=chain, **headers
    )


def _live(page) -> None:
    expect(page.locator("body")).to_have_attribute("data-live", "connected")


def test_split_a_message_into_a_new_conversation(page, tripwire, mailbox, request):
    a = _deliver(mailbox, "a@x", "Budget 2027", 9)
    b = _reply(mailbox, "b@x", a, 10, sender="Dave <dave@example.org>")
    c = _reply(mailbox, "c@x", b, 11)
    source = a.thread_id
    log_in(page, mailbox.address)
    page.goto(f"/t/{source}/")
    expect(page.locator("li.message")).to_have_count(3)

    screenshot(page, request.node.name, "before")
    page.locator(f"#m-{b.id}").get_by_role("button", name="Split into a new conversation").click()

    page.wait_for_url(re.compile(r"/t/\d+/$"))
    new_thread = Message.objects.get(pk=b.id).thread_id
    assert new_thread != source
    assert page.url.endswith(f"/t/{new_thread}/")
    expect(page.get_by_role("status")).to_contain_text("Split into a new conversation.")
    expect(page.locator("li.message")).to_have_count(1)
    # A conversation of one message has nothing to split it from.
    expect(page.locator("form.split")).to_have_count(0)
    expect(page.locator(f"#m-{b.id} .thread-reason")).to_have_text(re.compile("^You put it here"))
    screenshot(page, request.node.name, "split")

    page.goto(f"/t/{source}/")
    expect(page.locator("li.message")).to_have_count(2)
    expect(page.locator(f"#m-{b.id}")).to_have_count(0)
    expect(page.locator(f"#m-{c.id} .thread-reason")).to_contain_text("In-Reply-To/References")
    assert Thread.objects.get(pk=source).message_count == 2
    # A reply to the split-off message follows it, not the conversation it left.
    later = _reply(mailbox, "d@x", Message.objects.get(pk=b.id), 12)
    assert later.thread_id == new_thread
    assert tripwire.dialogs == []
    assert tripwire.console_errors == []


def test_a_split_in_one_tab_updates_another_tab_of_the_conversation(page, tripwire, mailbox, request):
    a = _deliver(mailbox, "a@x", "Budget 2027", 9)
    b = _reply(mailbox, "b@x", a, 10, sender="Dave <dave@example.org>")
    log_in(page, mailbox.address)
    other_tab = page.context.new_page()
    other_tab.goto(f"/t/{a.thread_id}/")
    _live(other_tab)
    expect(other_tab.locator("form.split")).to_have_count(2)
    # Marks on the page that a reload would lose: the card kept must be the same element.
    other_tab.evaluate(f"window.__noReload = true; document.getElementById('m-{a.id}').__kept = true")
    page.goto(f"/t/{a.thread_id}/")

    page.locator(f"#m-{b.id}").get_by_role("button", name="Split into a new conversation").click()

    page.wait_for_url(re.compile(rf"/t/{Message.objects.get(pk=b.id).thread_id}/$"))
    expect(other_tab.locator(f"#m-{b.id}")).to_have_count(0)
    expect(other_tab.locator("li.message")).to_have_count(1)
    expect(other_tab.locator(".conversation-head .count")).to_have_text("1 message")
    expect(other_tab.locator("form.split")).to_have_count(0)  # alone now: nothing to split it from
    assert other_tab.evaluate(f"document.getElementById('m-{a.id}').__kept && window.__noReload") is True
    assert other_tab.url.endswith(f"/t/{a.thread_id}/")
    screenshot(other_tab, request.node.name, "other-tab")
    assert tripwire.dialogs == []
    assert tripwire.console_errors == []


def test_merge_from_the_list_and_other_tabs_follow_live(page, tripwire, mailbox, request):
    old = _deliver(mailbox, "old@x", "Old plans", 9)
    new = _deliver(mailbox, "new@x", "New plans", 10)
    other = _deliver(mailbox, "other@x", "Something else", 8)
    log_in(page, mailbox.address)
    # Two more tabs of the same session: the conversation that will be merged away, and a list.
    conversation_tab = page.context.new_page()
    conversation_tab.goto(f"/t/{old.thread_id}/")
    _live(conversation_tab)
    list_tab = page.context.new_page()
    list_tab.goto("/")
    _live(list_tab)
    list_tab.evaluate("window.__noReload = true")
    expect(list_tab.locator("li.thread")).to_have_count(3)
    # And the conversation that will be kept: the merged-in message appears in it.
    survivor_tab = page.context.new_page()
    survivor_tab.goto(f"/t/{new.thread_id}/")
    _live(survivor_tab)
    survivor_tab.evaluate("window.__noReload = true")
    expect(survivor_tab.locator("form.split")).to_have_count(0)

    merge = page.get_by_role("button", name="Merge")
    expect(merge).to_be_disabled()
    page.locator(f"#thread-{old.thread_id} input.select").check()
    expect(merge).to_be_disabled()  # one conversation cannot be merged
    page.locator(f"#thread-{new.thread_id} input.select").check()
    merge.click()

    expect(page.get_by_role("heading", name="Merge 2 conversations")).to_be_visible()
    expect(page.get_by_label(re.compile("New plans"))).to_be_checked()  # the newest, by default
    screenshot(page, request.node.name, "choose")
    page.get_by_role("button", name="Merge conversations").click()

    page.wait_for_url(re.compile(r"/$"))
    expect(page.get_by_role("status")).to_contain_text("Merged 2 conversations into “New plans”.")
    expect(page.locator(f"#thread-{old.thread_id}")).to_have_count(0)
    expect(page.locator(f"#thread-{new.thread_id} .count")).to_have_text("2")
    # The other tabs, without a reload of their own:
    conversation_tab.wait_for_url(re.compile(rf"/t/{new.thread_id}/$"))
    expect(conversation_tab.locator("li.message")).to_have_count(2)
    expect(list_tab.locator(f"#thread-{old.thread_id}")).to_have_count(0)
    expect(list_tab.locator(f"#thread-{new.thread_id} .count")).to_have_text("2")
    expect(list_tab.locator(f"#thread-{other.thread_id}")).to_be_visible()
    assert list_tab.evaluate("window.__noReload") is True
    expect(survivor_tab.locator("li.message")).to_have_count(2)
    expect(survivor_tab.locator(f"#m-{old.id}")).to_be_visible()
    expect(survivor_tab.locator(f"#m-{old.id} .thread-reason")).to_have_text(re.compile("^You put it here"))
    expect(survivor_tab.locator("form.split")).to_have_count(2)
    expect(survivor_tab.locator(".conversation-head .count")).to_have_text("2 messages")
    assert survivor_tab.evaluate("window.__noReload") is True
    screenshot(list_tab, request.node.name, "other-list-tab")
    screenshot(survivor_tab, request.node.name, "survivor-tab")
    screenshot(conversation_tab, request.node.name, "other-conversation-tab")
    assert not Thread.objects.filter(pk=old.thread_id).exists()
    assert tripwire.dialogs == []
    assert tripwire.console_errors == []


def test_merge_lets_the_user_keep_an_older_conversation(page, mailbox):
    old = _deliver(mailbox, "old@x", "Old plans", 9)
    new = _deliver(mailbox, "new@x", "New plans", 10)
    log_in(page, mailbox.address)
    page.locator("#select-all").check()
    page.get_by_role("button", name="Merge").click()

    page.get_by_label(re.compile("Old plans")).check()
    page.get_by_role("button", name="Merge conversations").click()

    expect(page.get_by_role("status")).to_contain_text("into “Old plans”")
    expect(page.locator("li.thread")).to_have_count(1)
    assert Thread.objects.get(pk=old.thread_id).message_count == 2
    assert not Thread.objects.filter(pk=new.thread_id).exists()


def test_a_label_deleted_in_one_tab_leaves_the_other_tabs_live(page, tripwire, mailbox, request):
    message = _deliver(mailbox, "f@x", "Invoice 42", 9)
    finance = off_loop(user_label_create, mailbox=mailbox, name="Finance", colour="#188038")
    off_loop(user_label_create, mailbox=mailbox, name="Travel")
    off_loop(messages_label_add, mailbox=mailbox, message_ids=[message.id], label=finance)
    log_in(page, mailbox.address)
    _live(page)
    page.evaluate("window.__noReload = true")
    sidebar = page.get_by_role("navigation", name="Mail folders and labels")
    expect(sidebar.get_by_role("link", name="Finance")).to_be_visible()
    expect(page.locator(f"#thread-{message.thread_id} .label-chip")).to_have_text("Finance")
    conversation_tab = page.context.new_page()
    conversation_tab.goto(f"/t/{message.thread_id}/")
    _live(conversation_tab)
    expect(conversation_tab.locator(".thread-labels .label-chip", has_text="Finance")).to_have_count(1)
    expect(conversation_tab.locator("#thread-move option", has_text="Finance")).to_have_count(1)
    expect(conversation_tab.locator("#thread-label option", has_text="Finance")).to_have_count(0)  # on it already
    label_tab = page.context.new_page()
    label_tab.goto(f"/label/{finance.id}/")
    _live(label_tab)
    expect(label_tab.locator("li.thread")).to_have_count(1)
    labels_tab = page.context.new_page()
    labels_tab.goto("/labels/")

    labels_tab.get_by_role("button", name="Delete “Finance”").click()
    expect(labels_tab.get_by_text("It comes off 1 conversation")).to_be_visible()
    labels_tab.get_by_role("button", name="Delete label").click()
    expect(labels_tab.get_by_role("status")).to_contain_text("Label “Finance” deleted.")

    expect(sidebar.get_by_role("link", name="Finance")).to_have_count(0)
    expect(sidebar.get_by_role("link", name="Travel")).to_be_visible()
    expect(page.locator(".label-chip")).to_have_count(0)
    expect(page.locator("#bulk-label option", has_text="Finance")).to_have_count(0)
    assert page.evaluate("window.__noReload") is True
    expect(conversation_tab.locator(".thread-labels .label-chip")).to_have_count(0)
    expect(conversation_tab.locator("#thread-move option", has_text="Finance")).to_have_count(0)
    expect(conversation_tab.locator("#thread-label option", has_text="Travel")).to_have_count(1)
    expect(label_tab.locator("li.thread")).to_have_count(0)
    expect(label_tab.get_by_text("This label was deleted.")).to_be_visible()
    screenshot(page, request.node.name, "inbox-tab")
    screenshot(label_tab, request.node.name, "deleted-label-tab")
    assert tripwire.console_errors == []


def test_labels_created_renamed_or_recoloured_in_one_tab_show_in_the_others(page, tripwire, mailbox, request):
    message = _deliver(mailbox, "g@x", "Invoice 43", 9)
    finance = off_loop(user_label_create, mailbox=mailbox, name="Finance", colour="#188038")
    off_loop(messages_label_add, mailbox=mailbox, message_ids=[message.id], label=finance)
    log_in(page, mailbox.address)
    _live(page)
    page.evaluate("window.__noReload = true")
    sidebar = page.get_by_role("navigation", name="Mail folders and labels")
    chip = page.locator(f"#thread-{message.thread_id} .label-chip")
    expect(chip).to_have_text("Finance")
    conversation_tab = page.context.new_page()
    conversation_tab.goto(f"/t/{message.thread_id}/")
    _live(conversation_tab)
    label_tab = page.context.new_page()
    label_tab.goto(f"/label/{finance.id}/")
    _live(label_tab)
    labels_tab = page.context.new_page()
    labels_tab.goto("/labels/")

    labels_tab.locator("section[aria-labelledby=new-label]").get_by_label("Name").fill("Travel")
    labels_tab.get_by_role("button", name="Create").click()
    expect(labels_tab.get_by_role("status")).to_contain_text("Label “Travel” created.")
    expect(sidebar.get_by_role("link", name="Travel")).to_be_visible()
    expect(page.locator("#bulk-label option", has_text="Travel")).to_have_count(1)
    expect(conversation_tab.locator("#thread-label option", has_text="Travel")).to_have_count(1)

    edit = labels_tab.locator("ul.label-rows li", has_text="Finance").locator("form.label-form")
    edit.get_by_label("Name").fill("Money")
    edit.get_by_label("Colour").select_option(value="#d93025")
    edit.get_by_role("button", name="Save").click()
    expect(labels_tab.get_by_role("status")).to_contain_text("Label saved.")

    expect(sidebar.get_by_role("link", name="Money")).to_be_visible()
    expect(sidebar.get_by_role("link", name="Finance")).to_have_count(0)
    expect(sidebar.locator(f"a[data-list='{finance.id}'] .chip")).to_have_class(re.compile("chip-d93025"))
    expect(chip).to_have_text("Money")
    expect(chip).to_have_class(re.compile("chip-d93025"))
    expect(page.locator("#bulk-label option", has_text="Money")).to_have_count(1)
    expect(page.locator("#bulk-label option", has_text="Finance")).to_have_count(0)
    # The conversation's chip (its label menus offer only the labels it does not have).
    expect(conversation_tab.locator(".thread-labels .label-chip")).to_have_text(re.compile("^Money"))
    expect(label_tab.locator("main h1")).to_have_text("Money")
    expect(label_tab).to_have_title(re.compile(r"^Money"))
    # What a full load shows, the live tab shows: the same partials.
    fresh = page.context.new_page()
    fresh.goto("/")
    assert fresh.locator("nav.sidebar").inner_html() == page.locator("nav.sidebar").inner_html()
    assert (
        fresh.locator(f"#thread-{message.thread_id}").inner_html()
        == page.locator(f"#thread-{message.thread_id}").inner_html()
    )
    assert page.evaluate("window.__noReload") is True
    screenshot(page, request.node.name, "renamed")
    assert tripwire.console_errors == []
