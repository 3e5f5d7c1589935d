// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../MarketStorage.sol";
import {MandateWord, OwnerWord} from "../lib/MandateWord.sol";

/// @title MandatesModule
/// @notice Participants' standing mandates, and the cancellation of what they signed.
/// A mandate (EIP-712 `Mandate`, signed by the owner, relayed by anyone) lets the oracle
/// settle the participant's metered energy in the intervals it covers, within its
/// price and energy limits. Cancellation works by floors: revoking mandates or
/// cancelling orders up to a nonce reaches everything signed with a nonce that low,
/// including what was signed but never submitted.
contract MandatesModule is MarketStorage {
    using MandateWord for uint256;

    /// @notice A participant's standing permission, as signed. Prices are minor units per
    /// kWh; validity in unix seconds, inclusive (it covers the intervals that lie wholly
    /// within it); energy per interval in Wh; state of charge in parts per million.
    struct Mandate {
        uint32 participant;
        uint64 maxBuyPrice;
        uint64 minSellPrice;
        uint32 minSocPpm;
        uint32 maxSocPpm;
        uint64 validFrom;
        uint64 validUntil;
        uint64 maxEnergyWh;
        uint64 nonce;
    }

    bytes32 private constant MANDATE_TYPEHASH = keccak256(
        "Mandate(uint32 participant,uint64 maxBuyPrice,uint64 minSellPrice,uint32 minSocPpm,uint32 maxSocPpm,uint64 validFrom,uint64 validUntil,uint64 maxEnergyWh,uint64 nonce)"
    );
    bytes32 private constant REVOCATION_TYPEHASH = keccak256("Revocation(uint32 participant,uint64 nonce)");
    bytes32 private constant CANCELLATION_TYPEHASH = keccak256("OrderCancellation(uint32 participant,uint64 nonce)");
    uint32 private constant PPM = 1_000_000;

    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](9);
        s[0] = this.submitMandate.selector;
        s[1] = this.submitMandates.selector;
        s[2] = bytes4(keccak256("revokeMandate(uint32,uint64,bytes)"));
        s[3] = bytes4(keccak256("revokeMandate(uint32)"));
        s[4] = this.revokeMandates.selector;
        s[5] = bytes4(keccak256("cancelOrders(uint32,uint64,bytes)"));
        s[6] = bytes4(keccak256("cancelOrders(uint32,uint64)"));
        s[7] = this.mandateOf.selector;
        s[8] = this.nonceFloors.selector;
    }

    /// @notice Puts a mandate signed by the participant's owner in force; anyone may
    /// relay it. Its nonce must be above the mandate in force and not below the
    /// revocation floor, so an old or revoked mandate never comes back.
    function submitMandate(Mandate calldata m, bytes calldata signature) external {
        _setMandate(m, signature);
    }

    /// @notice `submitMandate` for many mandates in one transaction.
    function submitMandates(Mandate[] calldata mandates, bytes[] calldata signatures) external {
        if (mandates.length != signatures.length) revert LengthMismatch(mandates.length, signatures.length);
        for (uint256 i = 0; i < mandates.length; ++i) {
            _setMandate(mandates[i], signatures[i]);
        }
    }

    /// @notice Revokes every mandate of `participant` with a nonce up to `nonce`, with the
    /// owner's signed EIP-712 `Revocation`; anyone may relay it.
    function revokeMandate(uint32 participant, uint64 nonce, bytes calldata signature) external {
        address signer = _signer(keccak256(abi.encode(REVOCATION_TYPEHASH, participant, nonce)), signature);
        _requireSignedByOwner(participant, signer, false);
        _revoke(participant, nonce);
    }

    /// @notice Revokes the caller's own mandate in force (and every older one).
    function revokeMandate(uint32 participant) external {
        _requireOwner(participant);
        uint256 m = _mandates[participant];
        if (m == 0) revert NoMandate(participant);
        _revoke(participant, m.nonce());
    }

    /// @notice Revokes every mandate of the caller's `participant` up to `nonce`.
    function revokeMandates(uint32 participant, uint64 nonce) external {
        _requireOwner(participant);
        _revoke(participant, nonce);
    }

    /// @notice Cancels every order of `participant` with a nonce up to `nonce`, with the
    /// owner's signed EIP-712 `OrderCancellation`; anyone may relay it.
    function cancelOrders(uint32 participant, uint64 nonce, bytes calldata signature) external {
        address signer = _signer(keccak256(abi.encode(CANCELLATION_TYPEHASH, participant, nonce)), signature);
        _requireSignedByOwner(participant, signer, true);
        _cancel(participant, nonce);
    }

    /// @notice Cancels every order of the caller's `participant` up to `nonce`.
    function cancelOrders(uint32 participant, uint64 nonce) external {
        _requireOwner(participant);
        _cancel(participant, nonce);
    }

    /// @notice The mandate in force (all zero: none; validFrom > validUntil: revoked).
    function mandateOf(uint32 participant)
        external
        view
        returns (
            uint64 maxBuyPrice,
            uint64 minSellPrice,
            uint64 validFrom,
            uint64 validUntil,
            uint64 maxEnergyWh,
            uint64 nonce,
            uint64 since
        )
    {
        uint256 m = _mandates[participant];
        return (
            uint64(m.maxBuyPrice()),
            uint64(m.minSellPrice()),
            m.validFrom(),
            m.validUntil(),
            uint64(m.maxEnergyWh()),
            m.nonce(),
            uint64(m.since())
        );
    }

    /// @notice The lowest order nonce and the lowest mandate nonce still valid.
    function nonceFloors(uint32 participant) external view returns (uint64 orderFloor, uint64 mandateFloor) {
        uint256 owner = _owners[participant];
        return (OwnerWord.orderFloor(owner), OwnerWord.mandateFloor(owner));
    }

    function _setMandate(Mandate calldata m, bytes calldata signature) private {
        uint32 id = m.participant;
        address signer = _signer(keccak256(abi.encode(MANDATE_TYPEHASH, m)), signature);
        uint256 owner = _requireSignedByOwner(id, signer, false);
        uint64 floor = OwnerWord.mandateFloor(owner);
        uint256 current = _mandates[id];
        if (current != 0 && current.nonce() >= floor) floor = current.nonce() + 1;
        if (m.nonce < floor) revert StaleMandateNonce(id, floor, m.nonce);
        if (m.nonce > MandateWord.NONCE_MAX) revert ValueOutOfRange("nonce", m.nonce, MandateWord.NONCE_MAX);
        if (m.minSocPpm > m.maxSocPpm || m.maxSocPpm > PPM) revert InvalidSocBounds(id, m.minSocPpm, m.maxSocPpm);
        if (m.minSellPrice > MandateWord.PRICE_MAX) {
            revert ValueOutOfRange("minSellPrice", m.minSellPrice, MandateWord.PRICE_MAX);
        }
        // Stored limits are the signed ones or stricter: a higher buy limit than the field
        // holds buys nothing more (no tariff is that high), an energy bound is cut, and
        // validity ends within the field's range (the year 36812).
        _mandates[id] = MandateWord.pack(
            _min(m.maxBuyPrice, MandateWord.PRICE_MAX),
            m.minSellPrice,
            _min(m.validFrom, MandateWord.TIME_MAX),
            _min(m.validUntil, MandateWord.TIME_MAX),
            _min(m.maxEnergyWh, type(uint32).max),
            m.nonce,
            block.timestamp
        );
        emit MandateSet(
            id,
            m.nonce,
            m.maxBuyPrice,
            m.minSellPrice,
            m.minSocPpm,
            m.maxSocPpm,
            m.validFrom,
            m.validUntil,
            m.maxEnergyWh
        );
    }

    function _revoke(uint32 participant, uint64 upTo) private {
        uint256 owner = _owners[participant];
        uint64 floor = OwnerWord.mandateFloor(owner);
        if (upTo >= MandateWord.NONCE_MAX) revert ValueOutOfRange("nonce", upTo, MandateWord.NONCE_MAX - 1);
        if (upTo < floor) revert NonceNotAboveFloor(participant, floor, upTo);
        _owners[participant] = OwnerWord.withMandateFloor(owner, uint256(upTo) + 1);
        uint256 m = _mandates[participant];
        if (m != 0 && m.nonce() <= upTo) _mandates[participant] = m.revoked();
        emit MandateRevoked(participant, upTo);
    }

    function _cancel(uint32 participant, uint64 upTo) private {
        uint256 owner = _owners[participant];
        uint64 floor = OwnerWord.orderFloor(owner);
        if (upTo >= OwnerWord.ORDER_FLOOR_MAX) revert ValueOutOfRange("nonce", upTo, OwnerWord.ORDER_FLOOR_MAX - 1);
        if (upTo < floor) revert NonceNotAboveFloor(participant, floor, upTo);
        _owners[participant] = OwnerWord.withOrderFloor(owner, uint256(upTo) + 1);
        emit OrdersCancelled(participant, upTo);
    }

    /// @dev The owner word of a registered participant whose owner is `signer`.
    function _requireSignedByOwner(uint32 id, address signer, bool cancellation) private view returns (uint256 owner) {
        if (id >= _state.participantCount) revert UnknownParticipant(id);
        owner = _owners[id];
        if (signer != OwnerWord.owner(owner)) {
            if (cancellation) revert BadCancellationSignature(id, signer);
            revert BadMandateSignature(id, signer);
        }
    }

    function _min(uint256 a, uint256 b) private pure returns (uint256) {
        return a < b ? a : b;
    }
}
