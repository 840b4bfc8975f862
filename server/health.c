/*
 * health.c: the Health rpc and service_ready, what a node says of its readiness: serving,
 * writable (a persistent write can commit now) and how far its mirror of a shared store is
 * behind. The same function serves an HTTP /readyz where one is configured.
 *
 * What it does not do: no probing of its own; the store's probe thread keeps the figures
 * (store.h, store_health).
 *
 * Thread safety: reads the stores only.
 */
#include <string.h>

#include "handlers.h"
#include "pb.h"
#include "store.h"

bool
service_ready(struct service *svc, struct store_health *h)
{
	store_health(svc->persistent, h);
	return h->serving && h->writable;
}

enum status
handle_health(struct request *rq, const ProtobufCMessage *in, ProtobufCMessage *out)
{
	Secretd__V1__HealthReply *rep = (Secretd__V1__HealthReply *)out;
	struct store_health h;

	(void)in;
	if (rq->caller->role == ROLE_NONE)
		return outcome_set(&rq->info->outcome, ST_UNAUTHENTICATED, REASON_NO_CREDENTIALS,
		    "health needs credentials: send a token");
	(void)service_ready(rq->svc, &h);
	rep->serving = h.serving;
	rep->writable = h.writable;
	rep->persistent_store =
	    (char *)(rq->svc->persistent != NULL ? store_name(rq->svc->persistent) : "none");
	rep->store_rev = h.revision;
	rep->latest_rev = h.latest;
	rep->lag_ms = h.lag_ms;
	rep->detail = arena_strdup(rq->arena, h.detail);
	rep->persistent_count = rq->svc->persistent != NULL ? store_count(rq->svc->persistent) : 0;
	rep->temporary_count = rq->svc->temporary != NULL ? store_count(rq->svc->temporary) : 0;
	if (rep->detail == NULL)
		return outcome_no_memory(&rq->info->outcome);
	rq->info->outcome.status = ST_OK;
	rq->info->outcome.reason = "";
	memcpy(rq->info->outcome.message, "OK", 3);
	return ST_OK;
}
