// Package messages holds ClusterKit's protobuf protocol: Raft commands, the
// cluster state (the snapshot format), lifecycle events and actor messages.
//
// The .proto sources live in clusterkit/v1; the generated *.pb.go files are
// committed so that building and testing never need protoc. Regenerate with
//
//	go generate ./messages
//
// which needs protoc on PATH (Debian: apt-get install protobuf-compiler) and
// uses the protoc-gen-go version pinned by the go.mod tool directive.
package messages

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --go_out=. --go_opt=module=github.com/clusterkit/clusterkit/messages -I . clusterkit/v1/state.proto clusterkit/v1/commands.proto clusterkit/v1/events.proto clusterkit/v1/actors.proto clusterkit/v1/rpc.proto"
