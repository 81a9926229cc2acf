"""The model: the words of the work. The pod as Tandem sees it (`view`), the names users and
dashboards depend on (`names`), the two clocks (`clocks`), what a stop is (`stop`), what the core
asks the runtime to do and what that came to (`actions`), and the Events told once (`once`).
What Tandem remembers about a pod is the finish's (`finish.decision.PodMemory`). Imports nothing
from the other rooms."""
