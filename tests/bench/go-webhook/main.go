// The Go peer of bench-webhook: a net/http + encoding/json webhook (the k8s.io/api types, as
// Go webhooks read reviews) doing what status-reporter-webhook does for an opted-in Job
// CREATE: the same five patch operations (results volume, the adapter's mount and
// RESULTS_PATH, the reporter as a native sidecar, the status annotation). It takes
// `serve --listen ADDR --tls-cert CERT --tls-key KEY` and prints `listening on ADDR` first,
// as `status-reporter-webhook serve` does, so the benchmark starts both the same way.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"

	admissionv1 "k8s.io/api/admission/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

type op struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value"`
}

const inject = "status-reporter.hyperfleet.io/inject"

func patch(job *batchv1.Job) []op {
	pod := &job.Spec.Template.Spec
	adapter := pod.Containers[0]
	always, no, yes, uid := corev1.ContainerRestartPolicyAlways, false, true, int64(65532)
	field := func(name, path string) corev1.EnvVar {
		return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{
			FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: path}}}
	}
	size := resource.MustParse("16Mi")
	reporter := corev1.Container{
		Name: "status-reporter", Image: "ghcr.io/openshift-hyperfleet/status-reporter:0.1.0",
		ImagePullPolicy: corev1.PullIfNotPresent, RestartPolicy: &always,
		Env: []corev1.EnvVar{
			field("JOB_NAME", "metadata.labels['batch.kubernetes.io/job-name']"),
			field("JOB_NAMESPACE", "metadata.namespace"),
			field("POD_NAME", "metadata.name"),
			field("JOB_UID", "metadata.labels['batch.kubernetes.io/controller-uid']"),
			{Name: "ADAPTER_CONTAINER_NAME", Value: adapter.Name},
			{Name: "SIDECAR_MODE", Value: "native"},
			{Name: "RESULTS_PATH", Value: "/results/adapter-result.json"},
		},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{"cpu": resource.MustParse("10m"), "memory": size},
			Limits:   corev1.ResourceList{"memory": resource.MustParse("64Mi")},
		},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: &no, ReadOnlyRootFilesystem: &yes, RunAsNonRoot: &yes,
			RunAsUser: &uid, RunAsGroup: &uid,
			Capabilities:   &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		VolumeMounts:             []corev1.VolumeMount{{Name: "status-reporter-results", MountPath: "/results", ReadOnly: true}},
	}
	add := func(exists bool, path string, item any) op {
		if exists {
			return op{"add", path + "/-", item}
		}
		return op{"add", path, []any{item}}
	}
	spec := "/spec/template/spec"
	return []op{
		add(pod.Volumes != nil, spec+"/volumes", corev1.Volume{Name: "status-reporter-results",
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &size}}}),
		add(adapter.VolumeMounts != nil, spec+"/containers/0/volumeMounts",
			corev1.VolumeMount{Name: "status-reporter-results", MountPath: "/results"}),
		add(adapter.Env != nil, spec+"/containers/0/env",
			corev1.EnvVar{Name: "RESULTS_PATH", Value: "/results/adapter-result.json"}),
		add(pod.InitContainers != nil, spec+"/initContainers", reporter),
		{"add", "/spec/template/metadata/annotations",
			map[string]string{"status-reporter.hyperfleet.io/status": "injected"}},
	}
}

func mutate(w http.ResponseWriter, r *http.Request) {
	var review admissionv1.AdmissionReview
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 3<<20)).Decode(&review); err != nil || review.Request == nil {
		http.Error(w, fmt.Sprint("malformed AdmissionReview: ", err), http.StatusBadRequest)
		return
	}
	response := &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
	var job batchv1.Job
	if err := json.Unmarshal(review.Request.Object.Raw, &job); err != nil {
		response.Allowed, response.Result = false, &metav1.Status{Message: err.Error()}
	} else if job.Annotations[inject] == "true" && len(job.Spec.Template.Spec.Containers) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		response.Patch, _ = json.Marshal(patch(&job))
		response.PatchType = &pt
	}
	review.Request, review.Response = nil, response
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(&review)
}

func main() {
	flags := flag.NewFlagSet("serve", flag.ExitOnError)
	listen := flags.String("listen", "127.0.0.1:0", "address")
	cert := flags.String("tls-cert", "tls.crt", "PEM certificate chain")
	key := flags.String("tls-key", "tls.key", "PEM private key")
	if len(os.Args) < 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: go-webhook serve --listen ADDR --tls-cert CERT --tls-key KEY")
		os.Exit(2)
	}
	flags.Parse(os.Args[2:])
	pair, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("listening on %s\n", ln.Addr())
	mux := http.NewServeMux()
	mux.HandleFunc("POST /mutate", mutate)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	server := &http.Server{Handler: mux, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}}
	fmt.Fprintln(os.Stderr, server.ServeTLS(ln, "", ""))
	os.Exit(1)
}
