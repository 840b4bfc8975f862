/*
 * pb.h: short names for the generated protobuf-c types of secretd.v1, so that server code
 * stays readable. Only server/ includes this; the generated types never reach an
 * installed header.
 */
#ifndef SECRETD_SERVER_PB_H
#define SECRETD_SERVER_PB_H

#include "secretd.pb-c.h"

typedef Secretd__V1__Field pb_field;
typedef Secretd__V1__Secret pb_secret;
typedef Secretd__V1__SecretCreate pb_create;
typedef Secretd__V1__SecretCreateReply pb_create_reply;
typedef Secretd__V1__SecretDrop pb_drop;
typedef Secretd__V1__SecretDropReply pb_drop_reply;
typedef Secretd__V1__SecretList pb_list;
typedef Secretd__V1__SecretRow pb_row;
typedef Secretd__V1__SecretListReply pb_list_reply;
typedef Secretd__V1__SecretGet pb_get;
typedef Secretd__V1__SecretGetReply pb_get_reply;
typedef Secretd__V1__SecretResolve pb_resolve;
typedef Secretd__V1__SecretResolveReply pb_resolve_reply;
typedef Secretd__V1__Statement pb_statement;
typedef Secretd__V1__StatementReply pb_statement_reply;
typedef Secretd__V1__ResolveRow pb_resolve_row;
typedef Secretd__V1__Request pb_request;
typedef Secretd__V1__Reply pb_reply;

#define PB_STORAGE_ANY SECRETD__V1__STORAGE__STORAGE_UNSPECIFIED
#define PB_STORAGE_MEMORY SECRETD__V1__STORAGE__STORAGE_MEMORY
#define PB_STORAGE_SQLCIPHER SECRETD__V1__STORAGE__STORAGE_SQLCIPHER

#endif
