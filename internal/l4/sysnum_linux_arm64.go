package l4

// System call numbers for batched datagram I/O on linux/arm64.
const (
	sysRecvmmsg = 243
	sysSendmmsg = 269
)
