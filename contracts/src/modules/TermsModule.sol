// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../MarketStorage.sol";
import {TermsWord, IntervalWord, DefaultCapacityWord} from "../lib/TermsWord.sol";

/// @title TermsModule
/// @notice The terms every settlement is priced by, and the grid's capacity. Terms are
/// versions, each from an interval on: time-of-use import tariffs (a peak price for
/// some UTC hours), the export tariff, the P2P fee and the pricing rule (uniform or
/// pay-as-bid). The grid operator (or the admin) schedules them, and may fix one
/// interval's tariffs, only for intervals that start at least the notice period from
/// now: nobody changes the price of an interval once it is near or past.
contract TermsModule is MarketStorage {
    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](13);
        s[0] = this.scheduleTerms.selector;
        s[1] = this.setIntervalPrices.selector;
        s[2] = this.setCapacity.selector;
        s[3] = this.setDefaultCapacity.selector;
        s[4] = this.capacityOf.selector;
        s[5] = this.termsCount.selector;
        s[6] = this.termsVersion.selector;
        s[7] = this.termsAt.selector;
        s[8] = this.timing.selector;
        s[9] = this.nextInterval.selector;
        s[10] = this.setDefaultZoneCapacity.selector;
        s[11] = this.setZoneCapacity.selector;
        s[12] = this.zoneCapacityOf.selector;
    }

    /// @notice Schedules terms `t` for intervals from `fromInterval` on. `fromInterval`
    /// must start at least the notice period from now. Versions that start at or after
    /// `fromInterval` (so not yet within their notice period) are replaced; the first
    /// version never is.
    /// @return index The new version's index.
    function scheduleTerms(uint64 fromInterval, Tariffs calldata t) external returns (uint256 index) {
        if (!_roles[GRID_OPERATOR][msg.sender]) _checkRole(DEFAULT_ADMIN);
        _checkTariffs(t.importPrice, t.exportPrice, t.p2pFee);
        _checkTariffs(t.peakImportPrice, t.exportPrice, t.p2pFee);
        if (t.peakHours > TermsWord.HOURS_MAX) revert ValueOutOfRange("peakHours", t.peakHours, TermsWord.HOURS_MAX);
        uint256 previous;
        (index, previous) = _placeTerms(fromInterval);
        // The storage fee and operator (SharedBatteryModule) carry over: new tariffs leave them be.
        _terms[index] = TermsWord.pack(
            fromInterval, t.importPrice, t.peakImportPrice, t.exportPrice, t.p2pFee, t.peakHours, t.payAsBid
        ) | TermsWord.storagePart(previous);
        // Versions replaced above are past the new count and never read again.
        _state.termsCount = uint32(index + 1);
        emit TermsScheduled(
            index, fromInterval, t.importPrice, t.peakImportPrice, t.exportPrice, t.p2pFee, t.peakHours, t.payAsBid
        );
    }

    /// @notice Fixes the import and export tariffs of one interval (e.g. dynamic prices
    /// posted a day ahead), overriding the terms' time-of-use tariffs for it.
    function setIntervalPrices(uint64 interval, uint64 importPrice, uint64 exportPrice)
        external
        onlyRole(GRID_OPERATOR)
    {
        _checkTariffs(importPrice, exportPrice, 0);
        Clock memory clock = _clock;
        _requireNotice(clock, interval, block.timestamp + clock.noticeSeconds);
        _intervalTerms[interval] = IntervalWord.withPrices(_intervalTerms[interval], importPrice, exportPrice);
        emit IntervalPricesSet(interval, importPrice, exportPrice);
    }

    /// @notice Sets the capacity used for intervals without their own (Wh per interval;
    /// values beyond 2^48 - 1 mean no limit) that start from now on; intervals that
    /// started before keep the default they started under. Refused while an unsettled
    /// interval still runs under the default before the current one (settle it first).
    function setDefaultCapacity(uint64 importWh, uint64 exportWh) external onlyRole(GRID_OPERATOR) {
        _defaultCapacity = _changedDefault(_defaultCapacity, importWh, exportWh);
        emit DefaultCapacitySet(importWh, exportWh);
    }

    /// @notice Sets the capacity of one interval that is not yet settled. Capacity is a
    /// physical limit, not a price: it needs no notice, but it is set before the interval
    /// starts (intervals that started before the market's deployment excepted: history).
    function setCapacity(uint64 interval, uint64 importWh, uint64 exportWh) external onlyRole(GRID_OPERATOR) {
        _requireCapacityOpen(interval);
        _intervalTerms[interval] = IntervalWord.withCapacity(_intervalTerms[interval], _wh(importWh), _wh(exportWh));
        emit CapacitySet(interval, importWh, exportWh);
    }

    /// @notice The import and export limits (Wh) in force for `interval`.
    function capacityOf(uint64 interval) external view returns (uint64 importWh, uint64 exportWh) {
        (uint256 imp, uint256 exp) = _capacityOf(interval, _clock);
        return (uint64(imp), uint64(exp));
    }

    /// @notice Number of terms versions.
    function termsCount() external view returns (uint256) {
        return _state.termsCount;
    }

    /// @notice Terms version `index` as scheduled.
    function termsVersion(uint256 index)
        external
        view
        returns (uint64 fromInterval, Tariffs memory t)
    {
        if (index >= _state.termsCount) revert WrongTermsIndex(0, index);
        uint256 w = _terms[index];
        t = Tariffs(
            uint64(TermsWord.importPrice(w)),
            uint64(TermsWord.peakImportPrice(w)),
            uint64(TermsWord.exportPrice(w)),
            uint64(TermsWord.p2pFee(w)),
            TermsWord.peakHours(w),
            TermsWord.payAsBid(w)
        );
        return (TermsWord.fromInterval(w), t);
    }

    /// @notice What a settlement of `interval` is priced by: the terms version in force
    /// (its index goes into the settlement's header), the interval's import and export
    /// tariffs, the P2P fee and whether P2P energy is priced pay-as-bid.
    function termsAt(uint64 interval)
        external
        view
        returns (uint256 index, uint256 importPrice, uint256 exportPrice, uint256 p2pFee, bool payAsBid)
    {
        index = _termsIndexOf(interval);
        uint256 terms;
        (terms, importPrice, exportPrice) = _termsOf(_clock, interval, index);
        return (index, importPrice, exportPrice, TermsWord.p2pFee(terms), TermsWord.payAsBid(terms));
    }

    /// @notice The market's clock: interval 0 starts at `epoch` (unix seconds), each lasts
    /// `intervalSeconds`; settlements are disputable for one to two `disputeWindow`s;
    /// terms need `noticeSeconds` of notice; the market was deployed at `deployedAt`
    /// (intervals that started before are history: their limits may be posted later).
    function timing()
        external
        view
        returns (
            uint256 epoch,
            uint256 intervalSeconds,
            uint256 disputeWindow,
            uint256 noticeSeconds,
            uint256 deployedAt
        )
    {
        Clock memory c = _clock;
        return (c.epoch, c.intervalSeconds, c.disputeWindow, c.noticeSeconds, _deployedAt);
    }

    /// @notice The interval the next settlement is for.
    function nextInterval() external view returns (uint64) {
        return _state.nextInterval;
    }

    // ---- zones (issue 11)

    /// @notice Sets zone `zone`'s grid import/export limit (Wh per interval, e.g. its
    /// feeder's or transformer's rating) for intervals without their own; a zonal
    /// settlement keeps each zone within it. Values beyond 2^48 - 1 mean no limit; a
    /// zone never set has none.
    function setDefaultZoneCapacity(uint16 zone, uint64 importWh, uint64 exportWh) external onlyRole(GRID_OPERATOR) {
        _zoneCapacity[zone] = _changedDefault(_zoneCapacity[zone], importWh, exportWh);
        emit DefaultZoneCapacitySet(zone, importWh, exportWh);
    }

    /// @notice Sets zone `zone`'s limit for one interval not yet settled (a physical
    /// limit, like `setCapacity`: no notice).
    function setZoneCapacity(uint64 interval, uint16 zone, uint64 importWh, uint64 exportWh)
        external
        onlyRole(GRID_OPERATOR)
    {
        _requireCapacityOpen(interval);
        _intervalZoneCapacity[interval][zone] = IntervalWord.withCapacity(0, _wh(importWh), _wh(exportWh));
        emit ZoneCapacitySet(interval, zone, importWh, exportWh);
    }

    /// @notice Zone `zone`'s import and export limits (Wh) in force for `interval`.
    function zoneCapacityOf(uint64 interval, uint16 zone) external view returns (uint64 importWh, uint64 exportWh) {
        (uint256 imp, uint256 exp) = _zoneCapacityOf(interval, zone, _clock);
        return (uint64(imp), uint64(exp));
    }

    function _requireNotice(Clock memory clock, uint64 interval, uint256 earliest) private pure {
        uint256 startsAt = _intervalStart(clock, interval);
        if (startsAt < earliest) revert NoticeTooShort(interval, startsAt, earliest);
    }

    /// @dev `interval` is unsettled and, unless it is history, has not started.
    function _requireCapacityOpen(uint64 interval) private view {
        uint64 next = _state.nextInterval;
        if (interval < next) revert CapacityForPastInterval(interval, next);
        Clock memory clock = _clock;
        uint256 startsAt = _intervalStart(clock, interval);
        if (startsAt >= _deployedAt && block.timestamp > startsAt) {
            revert CapacityAfterStart(interval, startsAt, block.timestamp);
        }
    }

    /// @dev Default `word` changed to (importWh, exportWh) from now on. The word keeps one
    /// predecessor, so no unsettled interval after the deployment may have started before
    /// the change it records.
    function _changedDefault(uint256 word, uint64 importWh, uint64 exportWh) private view returns (uint256) {
        Clock memory clock = _clock;
        uint256 changedAt = DefaultCapacityWord.changedAt(word);
        uint256 k = _state.nextInterval;
        uint256 deployedAt = _deployedAt;
        if (deployedAt > clock.epoch) {
            uint256 firstLive = (deployedAt - clock.epoch + clock.intervalSeconds - 1) / clock.intervalSeconds;
            if (k < firstLive) k = firstLive;
        }
        if (_intervalStart(clock, k) < changedAt) revert DefaultCapacityInUse(uint64(k), changedAt);
        return DefaultCapacityWord.changed(word, _wh(importWh), _wh(exportWh), block.timestamp);
    }

    function _wh(uint64 wh) private pure returns (uint256) {
        return wh > IntervalWord.WH_MAX ? IntervalWord.WH_MAX : wh;
    }
}
