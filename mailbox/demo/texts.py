"""What the demo mail says: thread topics, small talk, automated senders and placeholder values.

Subjects and bodies hold ``{placeholders}``; one set of ``PLACEHOLDERS`` values is drawn per thread.
"""

from dataclasses import dataclass

from mailbox.demo.people import Person


@dataclass(frozen=True)
class Topic:
    subject: str
    opening: str
    replies: tuple[str, ...] = ()
    attachment: str = ""  # a key of mailbox.demo.attachments.ATTACHMENTS
    one_to_one: bool = False


WORK_TOPICS = (
    Topic(
        "{project} launch checklist",
        "I've put together a first pass at the launch checklist for {project}. The big open items are the load "
        "test, the rollback plan and sign-off from support.\n\nCould you look over the monitoring section? I'm not "
        "sure we have alerts on the new queue yet.",
        (
            "I went through the monitoring section. We have dashboards for the queue but no alert on backlog age, "
            "so I added one with a fifteen-minute threshold.",
            "The rollback plan looks solid. One gap: the migration in step 4 isn't reversible, so we should take a "
            "snapshot right before it runs.",
            "Support signed off this morning. They asked for a short FAQ to paste into tickets in the first week.",
            "The load test is booked for {weekday} at {time}. I'll post the numbers as soon as it finishes.",
        ),
    ),
    Topic(
        "{quarter} planning: draft roadmap",
        "Here's the draft roadmap for {quarter}. I've kept it to three themes: reliability, the {project} rollout "
        "and paying down the reporting debt.\n\nPlease add comments in the doc by {weekday}; we present it to the "
        "leadership group the week after.",
        (
            "Reliability first makes sense. I'd move the reporting work below the line though; we won't get to it.",
            "Can we add a line about the on-call load? Last quarter it ate roughly a day a week per person.",
            "I've commented on the {project} section. The estimate assumes two engineers; we have one until March.",
            "Looks good overall. Could you add owners next to each theme before we share it wider?",
        ),
    ),
    Topic(
        "Notes from {weekday}'s design review",
        "Attached are my notes from the design review. Short version: the team liked the event-driven approach, "
        "but there were real concerns about ordering guarantees.\n\nAction items are at the bottom. Shout if I "
        "missed anything.",
        (
            "Thanks for writing these up. I'll take the ordering question and come back with a proposal.",
            "One correction: we agreed to keep the old endpoint for two releases, not one.",
            "Great notes. I shared them with the {project} team since they hit the same problem last year.",
        ),
        attachment="notes",
    ),
    Topic(
        "Mockups for the new {project} onboarding",
        "Sharing the latest mockups for the onboarding flow. We cut it from five steps to three and moved the "
        "import option to the end.\n\nI attached the chart from the usability sessions as well: completion went up "
        "noticeably in the three-step version.",
        (
            "These look great. Is the skip link on step two intentional? It's easy to miss on mobile.",
            "Love the simplification. Engineering-wise step three needs a new endpoint, but nothing scary.",
            "Could we test the copy on the first screen? 'Connect your workspace' confused two people in the sessions.",
        ),
        attachment="chart",
    ),
    Topic(
        "Interview feedback: senior backend engineer",
        "Adding my feedback from today's interview before the debrief. Strong on systems design and very clear "
        "about trade-offs. A bit thin on testing strategy, though that may have been nerves.\n\nI'm leaning hire.",
        (
            "Same impression from the pairing session. Good instincts, and the right questions about the data model.",
            "I'm a weak hire. The answer on incident handling was vague and I'd like a reference check on that.",
            "Thanks all. Let's make the call in the debrief on {weekday}; I'll send an invite.",
        ),
    ),
    Topic(
        "Incident follow-up: elevated error rates on {weekday}",
        "Quick summary while it's fresh: between 14:05 and 14:40 UTC about 3% of API requests failed. The cause "
        "was a connection pool exhausted by a slow report query.\n\nI'll write the full post-mortem, but I'd like "
        "input on follow-ups before Friday.",
        (
            "We should put a statement timeout on the reporting role. That alone would have contained it.",
            "Customer impact was limited; support saw four tickets, all answered already.",
            "I can take the pool sizing change. It's a small PR and I'll have it up today.",
            "Thanks for the fast write-up. Let's review the post-mortem together in {weekday}'s ops meeting.",
        ),
    ),
    Topic(
        "{quarter} numbers for the board deck",
        "Attached are the {quarter} numbers finance sent over. Revenue is slightly ahead of plan, costs are up "
        "mostly because of the infrastructure migration.\n\nCan you sanity-check the March figures before I put "
        "them in the deck?",
        (
            "March looks right to me. The spike in costs is the one-off data transfer fee.",
            "One thing: the revenue column excludes the {client} renewal that closed on the last day of the quarter.",
            "Thanks, the deck is updated. I'll circulate the final version tomorrow.",
        ),
        attachment="numbers",
    ),
    Topic(
        "Can we move our 1:1?",
        "Something came up on {weekday} afternoon. Could we move our 1:1 to the morning, say {time}? If that doesn't "
        "work I'm also free on Thursday after lunch.",
        (
            "{time} works. I'll move the invite.",
            "Morning is tricky, I have the vendor call. Thursday after lunch is perfect.",
        ),
        one_to_one=True,
    ),
    Topic(
        "Release {version}: go/no-go",
        "Release {version} is on staging. All checks are green except the flaky export test, which I re-ran "
        "twice.\n\nUnless someone objects, I'd like to ship tomorrow at {time}.",
        (
            "Go from QA. We verified the two regression fixes by hand as well.",
            "No objection. Please keep an eye on the error rate for an hour after the deploy.",
            "Shipped. Dashboards look normal so far, I'll post again at the end of the day.",
        ),
    ),
    Topic(
        "Budget request for {conf} tickets",
        "Three of us would like to attend {conf} this year. Tickets are about €600 each plus travel. Two talks "
        "are directly relevant to the {project} work.\n\nIs there room in the training budget?",
        (
            "There's room for two. Could you decide among yourselves who goes and send me the costs?",
            "Happy to share notes afterwards for everyone who can't go.",
        ),
    ),
    Topic(
        "Customer escalation: {client} export timeouts",
        "{client} escalated through their account manager: large exports time out after sixty seconds. It affects "
        "their month-end reporting, so they're understandably unhappy.\n\nDo we have a workaround we can offer "
        "this week?",
        (
            "We can run the export for them as a background job and email the file. Not pretty, but it works.",
            "The real fix is streaming the export. It's about three days of work and I can start on {weekday}.",
            "I replied to their account manager with the workaround and a date for the fix.",
        ),
    ),
)

EXTERNAL_TOPICS = (
    Topic(
        "Statement of work for phase two",
        "Thank you again for the productive session last week. Please find our comments on the statement of work "
        "below.\n\nWe would like to split the migration into two milestones and add a short acceptance period "
        "after each one. Apart from that, legal is happy with the draft.",
        (
            "Splitting the migration is fine with us. I'll send a revised version with both milestones by {weekday}.",
            "Could you confirm who signs on your side? We need the name for the cover page.",
            "Received, thank you. We'll countersign and send it back tomorrow.",
        ),
    ),
    Topic(
        "Follow-up from today's call",
        "Thanks for your time today. As discussed, we will share access to the staging environment by the end of "
        "the week, and you will send the list of user roles you need.\n\nOur next check-in is {weekday} at {time}.",
        (
            "Thanks for the summary. The role list is in the shared folder now.",
            "One addition: our security team would like to review the data retention settings before go-live.",
            "Perfect. Speak on {weekday}.",
        ),
    ),
    Topic(
        "Invoice {number}: question about hours",
        "Our finance team had a question about invoice {number}. The hours for the integration work are higher "
        "than the estimate we agreed. Could you share a breakdown?",
        (
            "Of course. The extra hours came from the SSO changes your team requested mid-sprint; breakdown below.",
            "That makes sense, thanks. We'll process the invoice this week.",
        ),
    ),
    Topic(
        "Data export for the {project} migration",
        "As promised, here is a sample of the export in the agreed format. It covers one week of records.\n\n"
        "Could your team check that the column names match what your importer expects?",
        (
            "The columns match. Dates need to be ISO 8601 with a time zone; a few rows are missing it.",
            "Thanks for the quick check. I'll fix the date format and send the full export on {weekday}.",
        ),
        attachment="export",
    ),
    Topic(
        "Kick-off workshop in {city}",
        "We're looking forward to the kick-off in {city}. We booked a room for twelve people with a projector and "
        "a whiteboard wall.\n\nWould a 09:30 start work for your team?",
        (
            "09:30 is great. Four of us will travel; I'll send names for the building pass.",
            "Could we end by 16:00? Two of us need to catch the evening train.",
            "All confirmed. See you in {city}!",
        ),
    ),
    Topic(
        "Feedback on the staging build",
        "We spent the afternoon on the staging build. Overall it feels much faster. We logged three small issues in "
        "the tracker, and one bigger one: the permissions page doesn't save changes for read-only users.",
        (
            "Thanks for testing so thoroughly. The permissions bug is confirmed and fixed in the next build.",
            "Great news, we'll retest on {weekday}.",
        ),
    ),
)

PERSONAL_TOPICS = (
    Topic(
        "Weekend in {city}?",
        "Random idea: what about a long weekend in {city} next month? Flights are surprisingly cheap if we go "
        "Friday morning.\n\nI found a small apartment near the old town too. Thoughts?",
        (
            "Yes! I'm in. Can we make it Thursday to Sunday? I have leave to use up.",
            "Sounds great. I'll check with work, but I'm 90% sure it's fine.",
            "Booked the flights. Sending you the confirmation separately.",
        ),
    ),
    Topic(
        "Dinner on {weekday}",
        "Are you free for dinner on {weekday}? The new Lebanese place on the corner finally opened and I've heard "
        "great things.",
        ("Definitely. 19:30?", "Can't wait. I'll book a table for four in case Sam and Jamie join."),
    ),
    Topic(
        "Shared costs for the {city} trip",
        "I put all the costs from the trip in a spreadsheet so we can settle up. Attached as CSV.\n\nLet me know if "
        "I missed anything, I think the museum tickets were on your card.",
        ("Thanks for doing this! The museum tickets were mine, yes. I'll transfer the difference tonight.",),
        attachment="trip",
    ),
    Topic(
        "Book club: next pick",
        "Time to choose the next book. The shortlist is below; reply with your vote by {weekday}.\n\n"
        "1. A novel everybody keeps recommending\n2. The climate history one\n3. Something short, for once",
        ("Voting for the climate history one.", "Short, please. Last month nearly broke me."),
    ),
    Topic(
        "Help with the move on Saturday",
        "We finally got the keys! The move is on Saturday. If you have a couple of hours in the morning, pizza and "
        "eternal gratitude are on offer.",
        ("Count me in. I can bring my car for the small stuff.", "I'll be there from ten. Do you need boxes?"),
    ),
)

LIST_TOPICS = (
    Topic(
        "Office closed on {weekday}",
        "A reminder that the office is closed on {weekday} for the building's electrical maintenance. Please work "
        "from home; the VPN will be up as usual.",
        ("Does that include the server room? Asking for the nightly backups.", "Thanks for the heads-up!"),
    ),
    Topic(
        "Lunch & learn: {talk}",
        "This {weekday} at 12:30, {speaker} is giving a lunch & learn on {talk}. Food is provided; please reply "
        "if you have dietary requirements.",
        (
            "Vegetarian option for me, please.",
            "Will it be recorded? I'm out that day.",
            "Yes, we'll record it and share the link on the list.",
            "Slides are up on the wiki now. Thanks everyone for the great questions!",
        ),
    ),
    Topic(
        "On-call rota for {month}",
        "The on-call rota for {month} is on the wiki. Swaps are fine as long as you update the calendar and tell "
        "the person you're swapping with.",
        ("Could someone take my shift on the 14th? I'll take any weekend in return.", "I can take the 14th."),
    ),
    Topic(
        "Welcome our new colleagues!",
        "Please join me in welcoming two new people to the team this week. They'll be working on {project}, so "
        "expect lots of questions about the deployment pipeline!",
        ("Welcome aboard!", "Great to have you both. Coffee is on me this week.", "Welcome! Ping me any time."),
    ),
    Topic(
        "Offsite planning: vote on dates",
        "We're planning the team offsite for next quarter in {city}. Please vote for your preferred dates in the "
        "poll by {weekday}. We'll book travel once we have a date.",
        (
            "Voted. Any chance of avoiding the school holidays?",
            "Good point, I removed the holiday week from the poll.",
            "The second week has the most votes, so we're going with that. Details soon.",
            "Could we keep one afternoon free? Last time the agenda was wall-to-wall and nobody had time to talk.",
            "Is there a vegetarian option for the team dinner? Happy to help look for a place.",
            "I can't make the Friday, but I'll join for the first two days.",
            "Hotel rooms are booked. Please send me your arrival times so I can sort out the transfers.",
        ),
    ),
    Topic(
        "Who's going to {conf}?",
        "Is anyone else going to {conf}? It would be nice to meet up one evening, and maybe split a taxi from the "
        "airport.",
        ("I'll be there from Tuesday.", "Count me in for dinner.", "Same flight as you, it seems. Taxi it is."),
    ),
)

_CODEHUB = Person("CodeHub", "notifications@codehub.example")
_CALENDAR = Person("Calendar", "calendar-noreply@calendar.example")
NOTIFICATIONS = (
    (
        _CODEHUB,
        Topic(
            "[northwind/{repo}] Build #{number} failed on main",
            "Build #{number} failed on main.\n\nFailed step: test (unit)\n2 tests failed, 1,204 passed.\n\n"
            "View the build: https://codehub.example/northwind/{repo}/builds/{number}",
        ),
    ),
    (
        _CODEHUB,
        Topic(
            "[northwind/{repo}] Review requested on #{pr}: {pr_title}",
            "{speaker} requested your review on pull request #{pr}: {pr_title}.\n\n14 files changed, "
            "312 additions, 87 deletions.\n\nhttps://codehub.example/northwind/{repo}/pull/{pr}",
        ),
    ),
    (
        Person("Cloudly Billing", "billing@cloudly.example", 1),
        Topic(
            "Your Cloudly invoice for {month}",
            "Your invoice for {month} is available. Amount due: €{amount}, paid automatically on the 5th.\n\n"
            "The line items are attached as CSV.",
            attachment="invoice",
        ),
    ),
    (
        Person("Fjord Air", "bookings@fjordair.example", 1),
        Topic(
            "Booking confirmation: flight to {city}",
            "Thank you for booking with Fjord Air. Your booking reference is {ref}.\n\nOutbound: {weekday}, "
            "departs 07:45, arrives 10:20.\nCheck-in opens 30 hours before departure.",
        ),
    ),
    (
        Person("Staylight Hotels", "reservations@staylight.example", 2),
        Topic(
            "Your stay at Staylight {city} is confirmed",
            "We look forward to welcoming you to Staylight {city}. Reservation {ref}, two nights, breakfast "
            "included.\n\nCheck-in is from 15:00.",
        ),
    ),
    (
        Person("Account Security", "no-reply@accounts.example"),
        Topic(
            "New sign-in to your account",
            "We noticed a new sign-in to your account from Firefox on Linux near {city}.\n\nIf this was you, "
            "there is nothing to do. If not, reset your password right away.",
        ),
    ),
    (
        _CALENDAR,
        Topic(
            "Invitation: {meeting} @ {weekday} {time}",
            "{speaker} has invited you to {meeting}.\n\nWhen: {weekday} at {time} (30 minutes)\nWhere: Video "
            "call\n\nAccept, decline or propose a new time in your calendar.",
        ),
    ),
    (
        Person("Parcelly", "shipping@parcels.example", 1),
        Topic(
            "Your order {ref} has shipped",
            "Good news: your order {ref} is on its way and should arrive within two working days.\n\n"
            "Track your parcel: https://parcels.example/track/{ref}",
        ),
    ),
)

NEWSLETTERS = (
    (Person("The Weekly Stack", "editor@weeklystack.example", -8), "The Weekly Stack #{issue}: {headline}"),
    (Person("Design Digest", "hello@designdigest.example", 1), "Design Digest: {headline}"),
    (Person("Fjord Air Deals", "deals@fjordair.example", 1), "Fares to {city} from €{price} this season"),
)
HEADLINES = (
    "Postgres indexes you are probably missing",
    "Why your queue needs backpressure",
    "The quiet return of server-rendered HTML",
    "Typography for dense interfaces",
    "What we learned running 10,000 cron jobs",
    "Colour contrast that survives dark mode",
)

SMALL_TALK = (
    "Thanks for pulling this together, it's really helpful.",
    "Sounds good to me. Let me know if you need anything else from my side.",
    "I'll take a closer look tomorrow morning and get back to you.",
    "Makes sense. Can we capture this in the doc so we don't lose it?",
    "Perfect, thank you!",
    "Let's pick it up at stand-up if it's still open by then.",
    "Agreed. I'll update the ticket so the others can follow along.",
    "Sorry for the slow reply, it's been a week of meetings. Yes, let's do that.",
    "Good catch. I hadn't thought of that at all.",
    "Fine by me, as long as we keep the date.",
    "I'm out on Friday, so if anything needs my input please send it before Thursday.",
    "Done. Let me know if it looks off.",
    "+1. Nothing to add from my side.",
    "Just checking in on this one: any update?",
    "That works. I've blocked the time in my calendar.",
    "Thanks for the quick turnaround!",
)
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "project": ("Atlas", "Beacon", "Cobalt", "Harbor", "Lumen", "Orbit"),
    "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday"),
    "time": ("09:00", "10:30", "11:00", "14:00", "15:30", "16:00"),
    "quarter": ("Q1", "Q2", "Q3", "Q4"),
    "month": ("January", "February", "March", "April", "May", "June", "July", "September", "October"),
    "city": ("Lisbon", "Copenhagen", "Vienna", "Porto", "Edinburgh", "Ljubljana", "Valencia", "Kraków"),
    "client": ("Brightwave", "Harbor Labs", "Kestrel Bank", "Meridian Health"),
    "conf": ("PyCon Europe", "DjangoCon", "FOSDEM", "SREcon"),
    "talk": ("Postgres query plans", "writing good incident reports", "accessibility basics", "Django async views"),
    "speaker": ("Priya", "Kenji", "Amara", "Lukas"),
    "repo": ("atlas", "mailsite", "infra", "billing"),
    "pr_title": ("Stream large exports", "Add backlog age alert", "Upgrade to Django 5.2", "Fix timezone in reports"),
    "meeting": ("Roadmap review", "Sprint planning", "Vendor call", "Team retro"),
}
