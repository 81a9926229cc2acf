"""The finish: from one pod event to what Tandem does about it. In `decide`, `handle` applies the
gate (whose pod it is) and the policy, then `decide` reads the pod and takes one of two roads:

- the phase road (`phase/`): the primaries' outcome written as the pod's terminal phase, after
  the graceful stops that Tandem knows, in the stop order; also the only road without pods/exec;
- the exec road (`exec/`): each sidecar stopped along its ladder by exec, with the helper for
  images without a shell, and how the stopped sidecar exited.

Both roads share the routes (which path and container a stop takes), `send` (one stop
remembered and asked for), the Event wording (`hints`) and the values a decision is made of
(`decision`: what Tandem remembers of a pod, `PodMemory`; each step takes a `Part` and returns a
new one; `decide` makes the `Decision`).
The phase road never imports the exec road. `learn` takes back what carrying out an action came
to, once per action (`delivery` words its Event)."""
