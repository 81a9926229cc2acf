"""The policy: what the user asked for a pod. The SidecarPolicy and the pod's annotations
resolved into one `Policy` (`policy`), label selectors (`selector`), stop actions as a policy
names them (`stop_action`), the well-known sidecars and their documented stops (`known`), and
whose pod Tandem may act on at all (`ownership`). Stands on the model only."""
