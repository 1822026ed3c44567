package l4

// System call numbers the syscall package lacks on linux/amd64.
const (
	sysRecvmmsg = 299
	sysSendmmsg = 307
)
