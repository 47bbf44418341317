"""labox-prefect: every Prefect task output as a typed, tagged, queryable Labox record.

Importing this package registers the ``labox`` result serializer type and the
``labox-result-storage`` block with Prefect. A process that only *reads* results (through
Prefect or the block) must import it too, or Prefect cannot resolve the serializer type of
the stored records; workers and block loads find it through the ``prefect.collections``
entry point.
"""

from labox_prefect.result_storage import LaboxResultStorage
from labox_prefect.results import ResultRef, afind_results, find_results
from labox_prefect.serializer import LaboxSerializer
from labox_prefect.task import LaboxTask, labox_task

__all__ = [
    "LaboxResultStorage",
    "LaboxSerializer",
    "LaboxTask",
    "ResultRef",
    "afind_results",
    "find_results",
    "labox_task",
]
