"""The windowed engine every dialect shares: windows, scheduling, paging, emission, progress."""
