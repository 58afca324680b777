// kms-load drives a KMS v2 plugin over its Unix socket with the gRPC stack kube-apiserver uses
// (grpc-go and the k8s.io/kms v2 stubs), or OpenBao Transit directly over HTTPS, and prints one
// JSON object: the per-call latencies in milliseconds and the elapsed seconds. Bench-only: it is
// built beside the platform's servers and never shipped.
//
//	kms-load status          -socket S -n N
//	kms-load encrypt|decrypt -socket S -c C -duration D
//	kms-load transit-encrypt|transit-decrypt -addr URL -ca FILE -token-file FILE -mount M -key K -c C -duration D
//	kms-load serve           -socket S [-pad BYTES] [-key-id-bytes BYTES]
//
// serve is the floor: an empty grpc-go KMS v2 server on the socket (Status answers a fixed
// response, Encrypt/Decrypt echo), so `status` against it measures grpc-go on both ends and
// nothing else. It runs until SIGTERM or SIGINT. -pad lengthens each ciphertext (Decrypt strips it)
// and -key-id-bytes sets the key_id's length, so a kube-apiserver using it stores rows of the same
// size as with another plugin.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	kmsapi "k8s.io/kms/apis/v2"
)

type result struct {
	LatenciesMs []float64 `json:"latencies_ms"`
	Seconds     float64   `json:"seconds"`
}

func main() {
	if len(os.Args) < 2 {
		fail("usage: kms-load status|encrypt|decrypt|transit-encrypt|transit-decrypt [flags]")
	}
	mode := os.Args[1]
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	socket := fs.String("socket", "", "plugin Unix socket")
	n := fs.Int("n", 5000, "sequential Status calls")
	concurrency := fs.Int("c", 16, "concurrent callers")
	duration := fs.Duration("duration", 2500*time.Millisecond, "how long to keep calling")
	size := fs.Int("plaintext-bytes", 32, "plaintext size (a DEK seed is 32 bytes)")
	addr := fs.String("addr", "", "OpenBao URL")
	caFile := fs.String("ca", "", "OpenBao CA bundle (PEM)")
	tokenFile := fs.String("token-file", "", "file holding the OpenBao token")
	mount := fs.String("mount", "transit", "Transit mount")
	key := fs.String("key", "", "Transit key")
	pad := fs.Int("pad", 0, "serve: bytes appended to each ciphertext")
	keyIDBytes := fs.Int("key-id-bytes", 64, "serve: length of the key_id")
	_ = fs.Parse(os.Args[2:])

	plaintext := make([]byte, *size)
	_, _ = rand.Read(plaintext)
	var out result
	switch mode {
	case "serve":
		serve(*socket, *pad, *keyIDBytes)
		return
	case "status":
		client := dial(*socket)
		out = sequential(*n, func(ctx context.Context) error {
			_, err := client.Status(ctx, &kmsapi.StatusRequest{})
			return err
		})
	case "encrypt":
		client := dial(*socket)
		out = parallel(*concurrency, *duration, func(ctx context.Context) error {
			_, err := client.Encrypt(ctx, &kmsapi.EncryptRequest{Plaintext: plaintext, Uid: "bench"})
			return err
		})
	case "decrypt":
		client := dial(*socket)
		sample, err := client.Encrypt(context.Background(), &kmsapi.EncryptRequest{Plaintext: plaintext, Uid: "bench"})
		check(err)
		out = parallel(*concurrency, *duration, func(ctx context.Context) error {
			_, err := client.Decrypt(ctx, &kmsapi.DecryptRequest{Ciphertext: sample.Ciphertext, KeyId: sample.KeyId, Annotations: sample.Annotations, Uid: "bench"})
			return err
		})
	case "transit-encrypt", "transit-decrypt":
		t := newTransit(*addr, *caFile, *tokenFile, *mount, *key, *concurrency)
		body := map[string]string{"plaintext": base64.StdEncoding.EncodeToString(plaintext)}
		op := "encrypt"
		if mode == "transit-decrypt" {
			var sample struct {
				Ciphertext string `json:"ciphertext"`
			}
			check(t.call(context.Background(), "encrypt", body, &sample))
			body, op = map[string]string{"ciphertext": sample.Ciphertext}, "decrypt"
		}
		out = parallel(*concurrency, *duration, func(ctx context.Context) error { return t.call(ctx, op, body, nil) })
	default:
		fail("unknown mode " + mode)
	}
	check(json.NewEncoder(os.Stdout).Encode(out))
}

// dial connects the way kube-apiserver's KMS v2 client does: insecure gRPC over the Unix socket,
// authority "localhost".
func dial(socket string) kmsapi.KeyManagementServiceClient {
	if socket == "" {
		fail("-socket is required")
	}
	conn, err := grpc.NewClient("unix://"+socket, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithAuthority("localhost"))
	check(err)
	client := kmsapi.NewKeyManagementServiceClient(conn)
	// Connect before timing anything.
	_, err = client.Status(context.Background(), &kmsapi.StatusRequest{})
	check(err)
	return client
}

type floorServer struct {
	kmsapi.UnimplementedKeyManagementServiceServer
	status *kmsapi.StatusResponse
	pad    int
}

func (f *floorServer) Status(context.Context, *kmsapi.StatusRequest) (*kmsapi.StatusResponse, error) {
	return f.status, nil
}

func (f *floorServer) Encrypt(_ context.Context, r *kmsapi.EncryptRequest) (*kmsapi.EncryptResponse, error) {
	return &kmsapi.EncryptResponse{Ciphertext: append(bytes.Clone(r.Plaintext), make([]byte, f.pad)...), KeyId: f.status.KeyId}, nil
}

func (f *floorServer) Decrypt(_ context.Context, r *kmsapi.DecryptRequest) (*kmsapi.DecryptResponse, error) {
	if len(r.Ciphertext) < f.pad {
		return nil, fmt.Errorf("ciphertext shorter than the padding")
	}
	return &kmsapi.DecryptResponse{Plaintext: r.Ciphertext[:len(r.Ciphertext)-f.pad]}, nil
}

// serve hosts the empty server until SIGTERM/SIGINT; prints "listening" once the socket accepts.
func serve(socket string, pad, keyIDBytes int) {
	if socket == "" {
		fail("-socket is required")
	}
	_ = os.Remove(socket)
	listener, err := net.Listen("unix", socket)
	check(err)
	server := grpc.NewServer()
	kmsapi.RegisterKeyManagementServiceServer(server, &floorServer{status: &kmsapi.StatusResponse{Version: "v2", Healthz: "ok", KeyId: strings.Repeat("k", keyIDBytes)}, pad: pad})
	done := make(chan struct{})
	go func() {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
		server.Stop()
		close(done)
	}()
	fmt.Println("listening")
	_ = server.Serve(listener)
	<-done
	_ = os.Remove(socket)
}

func timed(call func(context.Context) error) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	check(call(ctx))
	return float64(time.Since(start).Nanoseconds()) / 1e6
}

func sequential(n int, call func(context.Context) error) result {
	start := time.Now()
	latencies := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		latencies = append(latencies, timed(call))
	}
	return result{LatenciesMs: latencies, Seconds: time.Since(start).Seconds()}
}

func parallel(concurrency int, duration time.Duration, call func(context.Context) error) result {
	start := time.Now()
	deadline := start.Add(duration)
	var mu sync.Mutex
	var wg sync.WaitGroup
	latencies := []float64{}
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := []float64{}
			for time.Now().Before(deadline) {
				mine = append(mine, timed(call))
			}
			mu.Lock()
			latencies = append(latencies, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return result{LatenciesMs: latencies, Seconds: time.Since(start).Seconds()}
}

type transit struct {
	http  *http.Client
	base  string
	key   string
	token string
}

func newTransit(addr, caFile, tokenFile, mount, key string, concurrency int) *transit {
	if addr == "" || tokenFile == "" || key == "" {
		fail("-addr, -token-file and -key are required")
	}
	pool := x509.NewCertPool()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		check(err)
		pool.AppendCertsFromPEM(pem)
	}
	token, err := os.ReadFile(tokenFile)
	check(err)
	transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}
	return &transit{http: &http.Client{Transport: transport}, base: strings.TrimSuffix(addr, "/") + "/v1/" + mount, key: key, token: strings.TrimSpace(string(token))}
}

func (t *transit) call(ctx context.Context, op string, body map[string]string, into any) error {
	payload, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.base+"/"+op+"/"+t.key, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	req.Header.Set("X-Vault-Token", t.token)
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("transit %s: HTTP %d", op, resp.StatusCode)
	}
	if into == nil {
		return nil
	}
	var envelope struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &envelope); err != nil {
		return err
	}
	return json.Unmarshal(envelope.Data, into)
}

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "kms-load:", message)
	os.Exit(1)
}
