/*
 * test_dispatch.c: the handler table (server/dispatch.c) built from secretd's bindings and
 * checked against the generated descriptor of service Secrets. The real table builds, has
 * one handler per method at the method's index, and remembers for resends exactly the
 * methods that can change state (Rekey included). A service with a method no binding
 * covers, a binding for a method the service lacks, a binding given twice, and a binding
 * whose message types are not the method's: each refuses the build with a message that
 * names the method. Reply.body's key is the one protoc gives field 4 (0x22), read from the
 * descriptor.
 */
#include <string.h>

#include "check.h"
#include "dispatch.h"
#include "pb.h"

int
main(void)
{
	const ProtobufCServiceDescriptor *sd = &secretd__v1__secrets__descriptor;
	struct dispatch d;
	struct method_binding bad[DISPATCH_MAX_METHODS + 1];
	ProtobufCMethodDescriptor methods[DISPATCH_MAX_METHODS + 1];
	ProtobufCServiceDescriptor extra;
	const struct method_binding *b;
	char err[256];
	size_t n;

	b = dispatch_bindings(&n);
	CHECK_STATUS(n, sd->n_methods);
	CHECK_STATUS(dispatch_build(&d, sd, b, n, err, sizeof(err)), ST_OK);
	CHECK_STATUS(d.n, sd->n_methods);
	for (unsigned i = 0; i < sd->n_methods; i++) {
		const struct dispatch_method *m = dispatch_find(&d, sd->methods[i].name);

		CHECK(m == &d.methods[i]);
		CHECK(m != NULL && m->desc == &sd->methods[i]);
		CHECK(m != NULL && m->binding->fn != NULL);
		CHECK(m != NULL && m->binding->input == sd->methods[i].input);
	}
	CHECK(dispatch_find(&d, "Nope") == NULL);
	/* Remembered for resends: every method that can change state, and only those. */
	{
		static const char *const remembered[] = {"Create", "Drop", "Execute", "Rekey"};

		for (unsigned i = 0; i < sd->n_methods; i++) {
			bool want = false;

			for (size_t k = 0; k < sizeof(remembered) / sizeof(remembered[0]); k++)
				want = want || strcmp(sd->methods[i].name, remembered[k]) == 0;
			CHECK(d.methods[i].binding->remembered_for_resend == want);
		}
	}
	/* Reply.body is field 4, length-delimited: key 0x22. */
	CHECK_STATUS(d.body_key_len, 1);
	CHECK_STATUS(d.body_key[0], (4 << 3) | 2);

	/* A binding missing: the method without a handler is named. */
	memcpy(bad, b, n * sizeof(*b));
	for (size_t i = 0; i < n; i++)
		if (strcmp(bad[i].name, "Rekey") == 0)
			bad[i] = bad[n - 1];
	CHECK_STATUS(dispatch_build(&d, sd, bad, n - 1, err, sizeof(err)), ST_INTERNAL);
	CHECK(strstr(err, "Rekey") != NULL && strstr(err, "no handler") != NULL);
	CHECK_STATUS(d.n, 0);
	CHECK(dispatch_find(&d, "Get") == NULL);

	/* A binding for a method the service does not have. */
	memcpy(bad, b, n * sizeof(*b));
	bad[n] = bad[0];
	bad[n].name = "Frobnicate";
	CHECK_STATUS(dispatch_build(&d, sd, bad, n + 1, err, sizeof(err)), ST_INTERNAL);
	CHECK(strstr(err, "Frobnicate") != NULL);

	/* A method bound twice. */
	bad[n] = bad[0];
	CHECK_STATUS(dispatch_build(&d, sd, bad, n + 1, err, sizeof(err)), ST_INTERNAL);
	CHECK(strstr(err, bad[0].name) != NULL && strstr(err, "two handlers") != NULL);

	/* A handler bound with another method's message types. */
	memcpy(bad, b, n * sizeof(*b));
	bad[0].input = &secretd__v1__health_request__descriptor;
	CHECK_STATUS(dispatch_build(&d, sd, bad, n, err, sizeof(err)), ST_INTERNAL);
	CHECK(strstr(err, bad[0].name) != NULL);

	/* A service with one more method than the bindings cover (a .proto that grew). */
	memcpy(methods, sd->methods, sd->n_methods * sizeof(*methods));
	methods[sd->n_methods] = sd->methods[0];
	methods[sd->n_methods].name = "Compact";
	extra = *sd;
	extra.methods = methods;
	extra.n_methods = sd->n_methods + 1;
	CHECK_STATUS(dispatch_build(&d, &extra, b, n, err, sizeof(err)), ST_INTERNAL);
	CHECK(strstr(err, "Compact") != NULL && strstr(err, "no handler") != NULL);
	return check_report();
}
