"""The policy: what the user asked for a pod. The SidecarPolicy and the pod's annotations
resolved into one `Policy` (`policy`), label selectors (`selector`), stop actions as a policy
names them (`stop_action`), and the well-known sidecars and their documented stops (`known`).
Stands on the model only. Whose pod Tandem may act on at all is the finish's gate
(`finish.decide.managed_job_pod`)."""
