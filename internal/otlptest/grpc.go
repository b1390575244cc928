package otlptest

import (
	"context"
	"net"
	"net/http"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	collogpb "go.opentelemetry.io/proto/otlp/collector/logs/v1"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
)

// ServeGRPC also serves OTLP over gRPC (the trace, metrics and logs
// services, without TLS) on another loopback port, and returns its
// "http://host:port", usable as OTEL_EXPORTER_OTLP_ENDPOINT with
// OTEL_EXPORTER_OTLP_PROTOCOL=grpc. What arrives is kept with what arrives
// over HTTP; a request's metadata is kept as its headers. The server stops
// when the test and its subtests have finished.
func (r *Receiver) ServeGRPC(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("otlptest: listening on loopback: %v", err)
	}
	srv := grpc.NewServer(grpc.MaxRecvMsgSize(maxBody))
	coltracepb.RegisterTraceServiceServer(srv, traceService{r: r})
	colmetricpb.RegisterMetricsServiceServer(srv, metricsService{r: r})
	collogpb.RegisterLogsServiceServer(srv, logsService{r: r})
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	return "http://" + l.Addr().String()
}

// traceService, metricsService and logsService are the collector's gRPC
// services, storing in a Receiver.
type traceService struct {
	coltracepb.UnimplementedTraceServiceServer
	r *Receiver
}

func (s traceService) Export(ctx context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	return &coltracepb.ExportTraceServiceResponse{}, s.r.storeGRPC(ctx, req)
}

type metricsService struct {
	colmetricpb.UnimplementedMetricsServiceServer
	r *Receiver
}

func (s metricsService) Export(ctx context.Context, req *colmetricpb.ExportMetricsServiceRequest) (*colmetricpb.ExportMetricsServiceResponse, error) {
	return &colmetricpb.ExportMetricsServiceResponse{}, s.r.storeGRPC(ctx, req)
}

type logsService struct {
	collogpb.UnimplementedLogsServiceServer
	r *Receiver
}

func (s logsService) Export(ctx context.Context, req *collogpb.ExportLogsServiceRequest) (*collogpb.ExportLogsServiceResponse, error) {
	return &collogpb.ExportLogsServiceResponse{}, s.r.storeGRPC(ctx, req)
}

// storeGRPC keeps msg as the HTTP handler would, with the request's
// metadata as its headers, or records why not.
func (r *Receiver) storeGRPC(ctx context.Context, msg proto.Message) error {
	md, _ := metadata.FromIncomingContext(ctx)
	h := http.Header{}
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	if err := r.store(msg, false, h); err != nil {
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		return status.Error(codes.InvalidArgument, err.Error())
	}
	return nil
}
