package taskfile

import (
	"fmt"
	"strings"
	"testing"
)

// bigFile returns a task file with services services (up to 256) of tasks
// tasks (up to 65536) each.
func bigFile(services, tasks int) []byte {
	var b strings.Builder
	b.WriteString("networks:\n  - {name: frontend, subnets: [10.0.0.0/8, \"fd00::/16\"]}\n")
	b.WriteString("services:\n")
	for s := range services {
		fmt.Fprintf(&b, "  - name: svc%d\n    ports: [{name: http, port: 80}]\n    tasks:\n", s)
		for t := range tasks {
			fmt.Fprintf(&b, "      - {slot: %d, addresses: {frontend: [10.%d.%d.%d, "+
				"\"fd00::%x:%x\"]}}\n", t+1, s%256, t/256, t%256, s, t)
		}
	}
	return []byte(b.String())
}

func BenchmarkParse(b *testing.B) {
	tests := []struct {
		name     string
		services int
		tasks    int
	}{
		{name: "small", services: 4, tasks: 3},
		{name: "large", services: 100, tasks: 100},
	}
	for _, tc := range tests {
		data := bigFile(tc.services, tc.tasks)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Parse("f.yaml", data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
