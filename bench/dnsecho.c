// dnsecho PORT: the UDP backend of bench/l4.sh. It answers every DNS
// query on 127.0.0.1:PORT with one A record, 127.0.0.1, taking and
// sending datagrams 64 at a time, so that it costs the load CPU as little
// as a DNS server can and the proxies, not the backend, set the rate.
// (dnsmasq, the first backend, took half of the load CPU by itself, which
// capped every proxy at the same rate.)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

enum { N = 64, SZ = 1232 };

int main(int argc, char **argv) {
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		perror("dnsecho");
		return 1;
	}
	static unsigned char buf[N][SZ + 16];
	static struct sockaddr_in from[N];
	static struct iovec iov[N];
	static struct mmsghdr m[N];
	static const unsigned char answer[16] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
	for (;;) {
		for (int i = 0; i < N; i++) {
			iov[i] = (struct iovec){buf[i], SZ};
			m[i].msg_hdr = (struct msghdr){.msg_name = &from[i], .msg_namelen = sizeof from[i],
				.msg_iov = &iov[i], .msg_iovlen = 1};
		}
		int n = recvmmsg(fd, m, N, MSG_WAITFORONE, NULL);
		if (n < 0)
			continue;
		for (int i = 0; i < n; i++) {
			unsigned char *p = buf[i];
			unsigned len = m[i].msg_len;
			if (len < 12) {
				iov[i].iov_len = 0;
				continue;
			}
			p[2] = (p[2] | 0x84) & ~0x02; // QR, AA; no TC
			p[3] = 0x80;                   // RA, NOERROR
			p[6] = 0, p[7] = 1;            // one answer
			p[8] = p[9] = p[10] = p[11] = 0;
			// the answer goes after the question; any additional section
			// (EDNS) the query carried is dropped with the count above
			unsigned q = 12;
			while (q < len && p[q] != 0)
				q += p[q] + 1;
			q += 5;
			if (q > len) {
				iov[i].iov_len = 0;
				continue;
			}
			memcpy(p + q, answer, sizeof answer);
			iov[i].iov_len = q + sizeof answer;
		}
		// drop what was not a query: the rest keep their order
		int k = 0;
		for (int i = 0; i < n; i++) {
			if (!iov[i].iov_len)
				continue;
			m[k] = m[i];
			iov[k] = iov[i];
			m[k].msg_hdr.msg_iov = &iov[k];
			k++;
		}
		if (k)
			sendmmsg(fd, m, k, 0);
	}
}
