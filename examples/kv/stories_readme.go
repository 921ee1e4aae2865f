package main

import (
	"context"
	"fmt"
	"io"
	"os"
	goruntime "runtime"
	"strings"
	"time"
)

// storyModes are the three applications of the earlier library: strong
// consistency, maximum throughput, and plain HTTP clients.
var storyModes = []struct {
	Replication Replication
	Routing     Routing
	Title       string
}{
	{ReplicationSync, RoutingClient, "sync: quorum writes, the smart client"},
	{ReplicationAsync, RoutingClient, "async: the primary acknowledges, replicas follow"},
	{ReplicationSync, RoutingServer, "server routing: plain HTTP clients, any node"},
}

// writeStories runs the three stories and writes their reports into the
// file between the story markers. It writes nothing if one fails.
func writeStories(ctx context.Context, cfg modeStoryConfig, path string) error {
	const begin, end = "<!-- stories:begin -->", "<!-- stories:end -->"
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc := string(data)
	i, j := strings.Index(doc, begin), strings.Index(doc, end)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s ... %s block", path, begin, end)
	}
	var b strings.Builder
	b.WriteString(begin + "\n")
	fmt.Fprintf(&b, "Produced by `go generate ./examples/kv` (`go run . -stories-readme README.md`) on %s, %s.\n",
		time.Now().UTC().Format("2006-01-02"), machine())
	for _, m := range storyModes {
		c := cfg
		c.Replication, c.Routing = m.Replication, m.Routing
		cmd := fmt.Sprintf("go run ./examples/kv -story -replication %s -routing %s", m.Replication, m.Routing)
		fmt.Fprintf(&b, "\n### %s\n\n```sh\n%s\n```\n\n```text\n", m.Title, cmd)
		sctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
		_, err := runModeStory(sctx, c, io.MultiWriter(&b, os.Stdout))
		cancel()
		if err != nil {
			return fmt.Errorf("%s: %w", cmd, err)
		}
		b.WriteString("```\n")
	}
	doc = doc[:i] + b.String() + doc[j:]
	return os.WriteFile(path, []byte(doc), 0o644)
}

// machine describes where a report was produced.
func machine() string {
	return fmt.Sprintf("%s/%s, %d CPUs", goruntime.GOOS, goruntime.GOARCH, goruntime.NumCPU())
}
