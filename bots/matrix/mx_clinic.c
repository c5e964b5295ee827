/*
 * mx_clinic.c: the clinicians' room (matrix.clinician_room).
 *
 * It gets the escalations, and any member but the bot may write
 * "/clear <patient number>" there to lift a clinical hold, as in the
 * Telegram clinician chat. Nothing said in it ever reaches the engine as a
 * patient's message: the same command from a patient's room is an unknown
 * command, and a /start here enrols nobody.
 *
 * engine_clear() commits on its own; the command's event id then goes into
 * the inbox with the reply and the sync cursor in one transaction. A batch
 * offered again (a later message failed, say) finds the event there and
 * says nothing twice; a crash between the two runs the command again,
 * which finds no hold and says so.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "log.h"
#include "mx_int.h"

/* "/clear" then a space or the end: the argument after it, else NULL. */
static const char *
mx_clear_arg(const char *text)
{
	if (strncmp(text, "/clear", 6) != 0)
		return NULL;
	if (text[6] != '\0' && text[6] != ' ')
		return NULL;
	return text + 6;
}

/* The reply (or, when the event was handled before, nothing) and the
 * cursor, in one transaction. */
static int
mx_clinic_commit(struct matrix *m, const char *event_id, const char *text,
    const char *reply, const struct engine_cursor *cur)
{
	struct store	*st = engine_store(m->e);
	int64_t		 now = clock_now(), id;
	int		 rc;

	if (store_begin(st) != 0)
		return -1;
	rc = store_inbox_insert(st, MX_ADAPTER, event_id, m->clinician, text,
	    now, &id);
	if (rc == STORE_DUPLICATE)
		rc = 0;
	else if (rc == 0)
		rc = store_outbox_insert(st, 0, MX_ADAPTER, MX_CLINICIAN, reply,
		    NULL, now, NULL);
	if (rc == 0 && cur != NULL && cur->key != NULL)
		rc = store_kv_set(st, cur->key, cur->value, now);
	if (rc != 0 || store_commit(st) != 0) {
		store_rollback(st);
		return -1;
	}
	return 0;
}

int
mx_clinic_message(struct matrix *m, const char *event_id, const char *text,
    const struct engine_cursor *cur)
{
	const char	*arg;
	char		*reply;
	int		 rc;

	/* Their own conversation: only the cursor moves. */
	if ((arg = mx_clear_arg(text)) == NULL)
		return cur != NULL ? engine_cursor(m->e, cur, clock_now()) : 0;
	if (engine_clear_command(m->e, arg, clock_now(), &reply) != 0)
		return -1;
	rc = mx_clinic_commit(m, event_id, text, reply, cur);
	free(reply);
	if (rc == 0)
		log_info("event=matrix_clinician_command command=clear");
	return rc;
}
