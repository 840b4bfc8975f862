/*
 * free_port.c: harness_free_port (harness.h), in a file of its own so that the store's
 * unit test, which starts etcd members (etcd_proc.c) but has no harness, links it alone.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

int
harness_free_port(const char *host)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int port = -1;

	if (fd >= 0 && inet_pton(AF_INET, host, &sa.sin_addr) == 1 &&
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		(void)close(fd);
	return port;
}
