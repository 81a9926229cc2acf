// Plays deploy/local/kwok/stages.yaml the way kwok v0.8.0 does, without a cluster: for each pod
// state, the stages whose selectors match (kwok picks one at random when several do, so exactly
// one must), the patch the chosen one renders, and the pod once the API server has merged it.
// run.sh builds it inside a copy of kwok's module (its internal packages are not importable from
// outside it).
package stagecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/config"
	"sigs.k8s.io/kwok/pkg/utils/gotpl"
	"sigs.k8s.io/kwok/pkg/utils/lifecycle"
)

func podStages(t *testing.T) lifecycle.Lifecycle {
	t.Helper()
	objs, err := config.Load(context.Background(), os.Getenv("STAGES"))
	if err != nil {
		t.Fatal(err)
	}
	var pods []*internalversion.Stage
	for _, s := range config.FilterWithType[*internalversion.Stage](objs) {
		if s.Spec.ResourceRef.Kind == "Pod" {
			pods = append(pods, s)
		}
	}
	lc, err := lifecycle.NewLifecycle(pods)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// merge applies a status patch as the API server would: a strategic merge into the typed pod.
func merge(t *testing.T, pod *corev1.Pod, patch []byte) *corev1.Pod {
	t.Helper()
	orig, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	merged, err := strategicpatch.StrategicMergePatch(orig, patch, corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	out := &corev1.Pod{}
	if err := json.Unmarshal(merged, out); err != nil {
		t.Fatal(err)
	}
	// Stored, times keep whole seconds (metav1.Time), as the API server's copy does.
	stored, _ := json.Marshal(out)
	out = &corev1.Pod{}
	if err := json.Unmarshal(stored, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// play checks that only the stage WANT matches POD (none when WANT is empty) and plays it.
func play(t *testing.T, lc lifecycle.Lifecycle, pod *corev1.Pod, want string) *corev1.Pod {
	t.Helper()
	event := &lifecycle.Event{Labels: pod.Labels, Annotations: pod.Annotations, Data: pod}
	matched, err := lc.ListAllPossible(context.Background(), event)
	if err != nil {
		t.Fatal(err)
	}
	names := []string{}
	for _, s := range matched {
		names = append(names, s.Name())
	}
	if want == "" {
		if len(names) != 0 {
			t.Fatalf("no stage should match, got %v", names)
		}
		return pod
	}
	if len(names) != 1 || names[0] != want {
		t.Fatalf("only %s should match, got %v", want, names)
	}
	renderer := gotpl.NewRenderer(gotpl.FuncMap{
		"NodeIPsWith": func(string) []string { return []string{"10.0.0.1"} },
		"PodIPsWith":  func(string, bool, string, string, string) []string { return []string{"10.1.0.1"} },
	})
	out := pod
	_, err = matched[0].DoSteps(0, pod.Finalizers, pod, renderer,
		func(*internalversion.StageEvent) error { return nil },
		func() error { t.Logf("%s: delete", want); return nil },
		func(p *lifecycle.Patch) error {
			if p.Type != types.StrategicMergePatchType || p.Subresource != "status" {
				return fmt.Errorf("%s: a %s patch of %q", want, p.Type, p.Subresource)
			}
			t.Logf("%s: %s", want, p.Data)
			out = merge(t, out, p.Data)
			return nil
		},
		func(*lifecycle.Apply) error { return nil },
	)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jobPod(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			Name:              "j00001-x",
			Namespace:         "scale-x",
			UID:               "uid-1",
			Annotations:       annotations,
			Finalizers:        []string{"batch.kubernetes.io/job-tracking"},
			OwnerReferences:   []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "Job", Name: "j00001"}},
			CreationTimestamp: metav1.Now(),
		},
		Spec: corev1.PodSpec{
			NodeName:      "kwok-node-0",
			RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{
				{Name: "main", Image: "fake"},
				{Name: "proxy-00001", Image: "fake"},
			},
		},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
}

func annotations(exit string, extra ...string) map[string]string {
	out := map[string]string{
		"kwok.tandem.dev/primary-ends-at":   "2000-01-01T00:00:00Z",
		"kwok.tandem.dev/primary-exit-code": exit,
		"tandem.dev/primary":                "main",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		out[extra[i]] = extra[i+1]
	}
	return out
}

// finishByPhase is Tandem's write: the phase, its condition (merged by type), and the annotation
// tandem.dev/finished naming the phase, in one strategic-merge patch of pods/status.
func finishByPhase(t *testing.T, pod *corev1.Pod, phase string) *corev1.Pod {
	return merge(t, pod, []byte(fmt.Sprintf(
		`{"metadata":{"annotations":{"tandem.dev/finished":%q}},`+
			`"status":{"phase":%q,"conditions":[{"type":"tandem.dev/Finished","status":"True"}]}}`,
		phase, phase,
	)))
}

// phaseOnly is the same write without the annotation: only the status changes.
func phaseOnly(t *testing.T, pod *corev1.Pod, phase string) *corev1.Pod {
	return merge(t, pod, []byte(fmt.Sprintf(
		`{"status":{"phase":%q,"conditions":[{"type":"tandem.dev/Finished","status":"True"}]}}`,
		phase,
	)))
}

// primaryEnded is a Job pod whose primary has ended while its sidecar runs.
func primaryEnded(t *testing.T, lc lifecycle.Lifecycle, ann map[string]string) *corev1.Pod {
	t.Helper()
	pod := play(t, lc, play(t, lc, jobPod(ann), "pod-ready"), "pod-primary-ends")
	play(t, lc, pod, "") // the sidecar runs until something acts
	return pod
}

func conditionsOf(pod *corev1.Pod) map[corev1.PodConditionType]corev1.ConditionStatus {
	out := map[corev1.PodConditionType]corev1.ConditionStatus{}
	for _, condition := range pod.Status.Conditions {
		out[condition.Type] = condition.Status
	}
	return out
}

// stopped checks the containers of a pod that pod-api-phase-stops-containers played on: the
// primary's end as it was (ENDED), the sidecar terminated with SIDECAR, Ready False.
func stopped(t *testing.T, pod *corev1.Pod, phase string, ended corev1.ContainerState, sidecar int32) {
	t.Helper()
	if string(pod.Status.Phase) != phase {
		t.Fatalf("phase %s, want %s", pod.Status.Phase, phase)
	}
	main, proxy := pod.Status.ContainerStatuses[0], pod.Status.ContainerStatuses[1]
	if !equality.Semantic.DeepEqual(main.State, ended) {
		t.Fatalf("the primary's end was rewritten: %+v", main.State)
	}
	end := proxy.State.Terminated
	if proxy.State.Running != nil || end == nil || end.ExitCode != sidecar ||
		end.ContainerID != "kwok://uid-1-proxy-00001" || proxy.Ready {
		t.Fatalf("sidecar: %+v", proxy)
	}
	conditions := conditionsOf(pod)
	if conditions["tandem.dev/Finished"] != "True" || conditions[corev1.PodReady] != "False" {
		t.Fatalf("conditions: %v", conditions)
	}
}

func TestAPhaseWrittenWithTheAnnotationStopsTheContainers(t *testing.T) {
	lc := podStages(t)
	for _, c := range []struct {
		primary, phase string
		extra          []string
		sidecar        int32
	}{
		{"0", "Succeeded", nil, 0},
		{"1", "Failed", nil, 0},
		{"0", "Succeeded", []string{"kwok.tandem.dev/sidecar-stop-exit-code", "143"}, 143},
	} {
		pod := primaryEnded(t, lc, annotations(c.primary, c.extra...))
		ended := pod.Status.ContainerStatuses[0].State
		pod = play(t, lc, finishByPhase(t, pod, c.phase), "pod-api-phase-stops-containers")
		stopped(t, pod, c.phase, ended, c.sidecar)
		play(t, lc, pod, "") // settled: nothing plays again
		pod.Finalizers = nil // the Job controller's update, or any later event
		play(t, lc, pod, "")
	}
}

// The pair: from the same pod, the phase written without the annotation leaves the containers
// running and is put back to Running (the real kubelet's status manager, 0 to 10 s later); with
// the annotation, the containers stop. A write with the annotation after the put-back stops them.
func TestAPhaseWrittenWithoutTheAnnotationIsPutBackAndStopsNothing(t *testing.T) {
	lc := podStages(t)
	for _, phase := range []string{"Succeeded", "Failed"} {
		primary := map[string]string{"Succeeded": "0", "Failed": "1"}[phase]
		pod := primaryEnded(t, lc, annotations(primary))
		ended := pod.Status.ContainerStatuses[0].State

		// Negative: the phase alone.
		written := phaseOnly(t, pod, phase)
		event := &lifecycle.Event{Labels: written.Labels, Annotations: written.Annotations, Data: written}
		matched, err := lc.ListAllPossible(context.Background(), event)
		if err != nil {
			t.Fatal(err)
		}
		if len(matched) != 1 || matched[0].Name() != "pod-api-phase-put-back" {
			t.Fatalf("only pod-api-phase-put-back should match, got %d stages", len(matched))
		}
		delays, ok, err := matched[0].DelayRangePossible(context.Background(), event, time.Now())
		if err != nil || !ok || len(delays) != 2 || delays[0] != 0 || delays[1] != 10*time.Second {
			t.Fatalf("pod-api-phase-put-back's delay: %v %v %v, want 0 to 10s", delays, ok, err)
		}
		back := play(t, lc, written, "pod-api-phase-put-back")
		if back.Status.Phase != corev1.PodRunning {
			t.Fatalf("phase %s, want it put back to Running", back.Status.Phase)
		}
		if !equality.Semantic.DeepEqual(back.Status.ContainerStatuses, pod.Status.ContainerStatuses) {
			t.Fatalf("the containers changed: %+v", back.Status.ContainerStatuses)
		}
		if s := back.Status.ContainerStatuses[1].State; s.Running == nil || s.Terminated != nil {
			t.Fatalf("the sidecar was stopped: %+v", s)
		}
		if conditionsOf(back)["tandem.dev/Finished"] != "True" {
			t.Fatalf("Tandem's condition was not kept: %v", conditionsOf(back))
		}
		play(t, lc, back, "") // nothing stops the sidecar until a write with the annotation
		back.Finalizers = nil
		play(t, lc, back, "")

		// Positive: the same pod, the phase written with the annotation.
		done := play(t, lc, finishByPhase(t, pod, phase), "pod-api-phase-stops-containers")
		stopped(t, done, phase, ended, 0)
		play(t, lc, done, "")

		// Tandem writes again, with the annotation, after the put-back.
		again := play(t, lc, finishByPhase(t, back, phase), "pod-api-phase-stops-containers")
		stopped(t, again, phase, ended, 0)
		play(t, lc, again, "")
	}
}

func TestADeletedPodIsKwoksPodDeleteAlone(t *testing.T) {
	lc := podStages(t)
	for _, write := range []func(*testing.T, *corev1.Pod, string) *corev1.Pod{finishByPhase, phaseOnly} {
		pod := write(t, primaryEnded(t, lc, annotations("0")), "Succeeded")
		now := metav1.Now()
		pod.DeletionTimestamp = &now
		play(t, lc, pod, "pod-delete")
	}
}

// The exit-code path: the benchmark's answerer ends the sidecar and writes the phase at once.
func TestTheExitCodePathsEndIsLeftAlone(t *testing.T) {
	lc := podStages(t)
	pod := play(t, lc, play(t, lc, jobPod(annotations("0")), "pod-ready"), "pod-primary-ends")
	ended := `{"state":{"terminated":{"exitCode":0,"reason":"Completed"}}}`
	pod = merge(t, pod, []byte(`{"status":{"phase":"Succeeded","containerStatuses":[`+
		`{"name":"main",`+ended[1:]+`,{"name":"proxy-00001",`+ended[1:]+`]}}`))
	play(t, lc, pod, "")
}
