package messages_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/clusterkit/clusterkit/messages"
)

// TestGeneratedCodeMatchesProto parses every .proto source with a pure-Go
// compiler and compares it with the descriptor embedded in the committed
// .pb.go files, so an edited .proto without `go generate ./messages` fails CI
// even on machines without protoc.
func TestGeneratedCodeMatchesProto(t *testing.T) {
	embedded := map[string]protoreflect.FileDescriptor{
		"clusterkit/v1/state.proto":    messages.File_clusterkit_v1_state_proto,
		"clusterkit/v1/commands.proto": messages.File_clusterkit_v1_commands_proto,
		"clusterkit/v1/events.proto":   messages.File_clusterkit_v1_events_proto,
		"clusterkit/v1/actors.proto":   messages.File_clusterkit_v1_actors_proto,
		"clusterkit/v1/rpc.proto":      messages.File_clusterkit_v1_rpc_proto,
	}
	sources, err := filepath.Glob("clusterkit/v1/*.proto")
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != len(embedded) {
		t.Fatalf("found %d .proto files %v, but %d are generated: add the new file to this test (buf generates every .proto file it finds)", len(sources), sources, len(embedded))
	}
	compiler := protocompile.Compiler{
		Resolver: protocompile.WithStandardImports(&protocompile.SourceResolver{
			Accessor: func(path string) (f io.ReadCloser, err error) { return os.Open(path) },
		}),
	}
	var names []string
	for name := range embedded {
		names = append(names, name)
	}
	files, err := compiler.Compile(context.Background(), names...)
	if err != nil {
		t.Fatalf("parse .proto sources: %v", err)
	}
	for _, f := range files {
		want := normalize(protodesc.ToFileDescriptorProto(f))
		got := normalize(protodesc.ToFileDescriptorProto(embedded[f.Path()]))
		if !proto.Equal(want, got) {
			t.Errorf("%s and its generated .pb.go disagree: run `go generate ./messages`", f.Path())
		}
	}
}

// normalize drops what differs between compilers without changing the schema.
func normalize(fd *descriptorpb.FileDescriptorProto) *descriptorpb.FileDescriptorProto {
	fd.SourceCodeInfo = nil
	var walk func(msgs []*descriptorpb.DescriptorProto)
	walk = func(msgs []*descriptorpb.DescriptorProto) {
		for _, m := range msgs {
			for _, f := range m.Field {
				f.JsonName = nil
			}
			walk(m.NestedType)
		}
	}
	walk(fd.MessageType)
	return fd
}
