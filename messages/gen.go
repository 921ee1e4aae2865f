// Package messages holds ClusterKit's protobuf protocol: Raft commands, the
// cluster state (the snapshot format), lifecycle events and actor messages.
//
// The .proto sources live in clusterkit/v1; the generated *.pb.go files are
// committed so that building and testing never need a protobuf compiler.
// Regenerate with
//
//	go generate ./messages
//
// which needs nothing but Go: it runs buf (pinned in tools/go.mod, a separate
// module so that buf's dependencies stay out of this module's graph) with
// buf.gen.yaml, and buf runs the protoc-gen-go version pinned by the go.mod
// tool directive, the version of the protobuf runtime. The first run builds
// buf and takes a minute or two.
package messages

//go:generate go tool -modfile=../tools/go.mod buf generate
