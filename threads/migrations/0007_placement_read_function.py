"""The resolver's first read as one round trip: ``threads_placement_read`` (see threads/services/reading.py)."""

from django.db import migrations

# VOLATILE (the default): in READ COMMITTED each statement inside takes a fresh snapshot, so the
# reads after the advisory locks see every row committed by a placement that held them before us.
# The same statements in one query would share a snapshot taken before the locks were granted.
CREATE = """
CREATE FUNCTION threads_placement_read(
    p_mailbox bigint, p_lock_keys bigint[], p_ids text[], p_subjects text[], p_since timestamptz,
    p_fragments_only boolean, p_limit integer
) RETURNS TABLE (
    kind "char", message_id text, thread_id bigint, seen boolean, sender text, is_bulk boolean,
    subject_anchor text, is_manual boolean, is_fragment boolean, message_count integer,
    normalized_subject text, list_id text, first_message_at timestamptz, last_message_at timestamptz,
    correspondents text[]
) LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
BEGIN
    PERFORM pg_advisory_xact_lock(k) FROM unnest(p_lock_keys) AS k;
    RETURN QUERY
    WITH known AS (
        SELECT m.message_id, m.thread_id, m.seen, m.sender, m.is_bulk, m.subject_anchor
        FROM threads_threadmessageid m WHERE m.mailbox_id = p_mailbox AND m.message_id = ANY(p_ids)
    ), locked AS (
        SELECT t.id, t.is_manual, t.is_fragment, t.message_count FROM threads_thread t
        WHERE t.mailbox_id = p_mailbox AND t.id IN (SELECT k.thread_id FROM known k) ORDER BY t.id FOR UPDATE
    )
    SELECT 'i'::"char", k.message_id::text, k.thread_id, k.seen, k.sender::text, k.is_bulk,
           k.subject_anchor::text, NULL::boolean, NULL::boolean, NULL::integer, NULL::text, NULL::text,
           NULL::timestamptz, NULL::timestamptz, NULL::text[]
    FROM known k
    UNION ALL
    SELECT 't'::"char", NULL, l.id, NULL, NULL, NULL, NULL, l.is_manual, l.is_fragment, l.message_count::integer,
           NULL, NULL, NULL, NULL, NULL
    FROM locked l;
    -- Two statements, so each matches its index: the fragments' partial one, or the subject one.
    IF cardinality(p_subjects) > 0 AND p_fragments_only THEN
        RETURN QUERY
        SELECT 'c'::"char", NULL::text, t.id, NULL::boolean, NULL::text, NULL::boolean, NULL::text,
               NULL::boolean, NULL::boolean, t.message_count::integer,
               t.normalized_subject::text, t.list_id::text, t.first_message_at, t.last_message_at,
               ARRAY(SELECT jsonb_array_elements_text(t.correspondents))
        FROM threads_thread t
        WHERE t.mailbox_id = p_mailbox AND t.normalized_subject = ANY(p_subjects) AND t.last_message_at >= p_since
          AND t.is_fragment AND NOT t.is_manual
        ORDER BY t.last_message_at LIMIT p_limit;
    ELSIF cardinality(p_subjects) > 0 THEN
        RETURN QUERY
        SELECT 'c'::"char", NULL::text, t.id, NULL::boolean, NULL::text, NULL::boolean, NULL::text,
               NULL::boolean, NULL::boolean, t.message_count::integer,
               t.normalized_subject::text, t.list_id::text, t.first_message_at, t.last_message_at,
               ARRAY(SELECT jsonb_array_elements_text(t.correspondents))
        FROM threads_thread t
        WHERE t.mailbox_id = p_mailbox AND t.normalized_subject = ANY(p_subjects) AND t.last_message_at >= p_since
        ORDER BY t.last_message_at LIMIT p_limit;
    END IF;
END
$$
"""


class Migration(migrations.Migration):
    dependencies = [
        ("threads", "0006_threadmessageid_subject_anchor"),
    ]

    operations = [
        migrations.RunSQL(CREATE, "DROP FUNCTION threads_placement_read(bigint, bigint[], text[], text[], timestamptz, boolean, integer)"),
    ]
