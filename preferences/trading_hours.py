"""A strategy's trading hours: the UTC windows in which it may open positions.

    "mon-fri 07:00-21:00, sun 18:00-23:59"

Windows are separated by commas. Each is an optional day or day range (`mon`, `sat-mon` wraps over
the week's end; none: every day) and a time range. A window starts at its start minute and ends
*before* its end minute: 07:00-21:00 allows 07:00:00 and refuses 21:00:00; `24:00` ends a window at
midnight. An end at or before the start runs overnight into the next day: `fri 22:00-02:00` is
Friday 22:00 to Saturday 02:00 (the days name the day a window starts). Case and spaces are free.

Pure: no ORM, no clock. The form refuses a value `trading_hours_parse` cannot read.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from functools import lru_cache

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MINUTES_PER_DAY = 24 * 60
_WINDOW = re.compile(r"^(?:(?P<days>[a-z]+(?:\s*-\s*[a-z]+)?)\s+)?(?P<start>\S+?)\s*-\s*(?P<end>\S+)$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})$")


class TradingHoursError(ValueError):
    """The value cannot be read; the message names the part and says why."""


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # the weekdays it starts on, Monday 0
    start: int  # minutes after midnight
    end: int  # minutes after midnight, exclusive; ≤ start: on the next day

    def covers(self, moment: datetime) -> bool:
        minute = moment.hour * 60 + moment.minute
        if self.end > self.start:
            return moment.weekday() in self.days and self.start <= minute < self.end
        # Overnight: the evening part on the day it starts, the morning part on the day after.
        if moment.weekday() in self.days and minute >= self.start:
            return True
        return (moment.weekday() - 1) % 7 in self.days and minute < self.end

    def starts_after(self, moment: datetime) -> datetime | None:
        """Its first start after `moment` (within the next week)."""
        for offset in range(8):
            day = moment.date() + timedelta(days=offset)
            start = datetime.combine(day, time(self.start // 60, self.start % 60), tzinfo=UTC)
            if day.weekday() in self.days and start > moment:
                return start
        return None


@dataclass(frozen=True)
class TradingHours:
    windows: tuple[Window, ...]  # empty: always open

    def allows(self, moment: datetime) -> bool:
        moment = moment.astimezone(UTC)
        return not self.windows or any(window.covers(moment) for window in self.windows)

    def next_open(self, moment: datetime) -> datetime | None:
        """When opens are next allowed after a moment outside every window."""
        moment = moment.astimezone(UTC)
        starts = [start for window in self.windows if (start := window.starts_after(moment)) is not None]
        return min(starts, default=None)


@lru_cache(maxsize=256)
def trading_hours_parse(text: str) -> TradingHours:
    """The windows of a trading-hours value; "" (or only spaces) is always open."""
    parts = [part.strip() for part in text.lower().split(",")]
    if parts == [""]:
        return TradingHours(())
    return TradingHours(tuple(_window(part) for part in parts))


def _window(part: str) -> Window:
    if not part:
        raise TradingHoursError("an empty window: two commas in a row, or one at the end")
    match = _WINDOW.match(part)
    if match is None:
        raise TradingHoursError(f'"{part}" is not a window: write e.g. "mon-fri 07:00-21:00" or "07:00-21:00"')
    start, end = _minute(match["start"], part), _minute(match["end"], part, end=True)
    if start == end:
        raise TradingHoursError(f'"{part}": the window starts and ends at the same time (00:00-24:00 is all day)')
    return Window(_days(match["days"], part), start, end)


def _minute(clock: str, part: str, *, end: bool = False) -> int:
    match = _CLOCK.match(clock)
    if match is None:
        raise TradingHoursError(f'"{part}": "{clock}" is not a time (HH:MM, 24-hour, UTC)')
    hour, minute = int(match[1]), int(match[2])
    if (hour, minute) == (24, 0) and end:
        return MINUTES_PER_DAY
    if hour > 23 or minute > 59:
        raise TradingHoursError(f'"{part}": "{clock}" is not a time of day (00:00 to 23:59; 24:00 only as an end)')
    return hour * 60 + minute


def _days(spec: str | None, part: str) -> frozenset[int]:
    if spec is None:
        return frozenset(range(7))
    names = [name.strip() for name in spec.split("-")]  # one day, or the first and last of a range
    first, last = _day(names[0], part), _day(names[-1], part)
    return frozenset((first + offset) % 7 for offset in range((last - first) % 7 + 1))


def _day(name: str, part: str) -> int:
    if name in DAYS:
        return DAYS.index(name)
    if name in DAY_NAMES:
        return DAY_NAMES.index(name)
    raise TradingHoursError(f'"{part}": "{name}" is not a day ({", ".join(DAYS)}, or the full names)')
