# Copyright: restate.admin contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# Internal to this collection: not a public API, may change in any release.
"""Run one call per item concurrently over the client's pooled session; one item's failure never stops the others."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor


def run_each(call, items, concurrency: int):
    """Call ``call(item)`` for every item with at most ``concurrency`` in flight.

    Returns ``[(item, result, error)]`` in the order of ``items``: ``error`` is the exception raised for that
    item (and ``result`` None), so the caller can report every item.
    """
    def guarded(item):
        try:
            return item, call(item), None
        except Exception as error:  # pylint: disable=broad-exception-caught  # reported per item
            return item, None, error

    items = list(items)
    if not items:
        return []
    if concurrency <= 1 or len(items) == 1:
        return [guarded(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(items))) as executor:
        return list(executor.map(guarded, items))
