"""Classroom mode (Mini-ISO's use): a wholesale zonal market run live in a lecture.

Generators are participants who enter offers (tranches of MW at a price) with a key the
lecturer hands out; the admin loads a case, edits zone loads, and clears on a button or
every N seconds; every round's prices, flows, dispatch and money are kept as tables per
zone, line and generator.

Imports node.data (the case) and optimizer (the zonal clearing); no chain, no index.
Settling classroom rounds on chain is a later step.
"""
