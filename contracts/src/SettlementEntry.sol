// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// @title SettlementEntry
/// @notice One participant's part of a settlement, packed into a single 256-bit word so
/// that a settlement costs one calldata word per participant instead of four:
///
///     bit  255       authorised by order   bool    (else by the participant's mandate)
///     bits 254..224  participant id        uint31
///     bits 223..176  grid energy, Wh       int48   (+ imported from the grid, - exported)
///     bits 175..128  P2P energy, Wh        int48   (+ bought from peers,      - sold)
///     bits 127..0    wallet change, units  int128  (+ credited,               - debited)
library SettlementEntry {
    /// @notice Splits a packed entry into its fields (sign-extending the signed ones).
    function decode(uint256 word)
        internal
        pure
        returns (uint32 participant, int256 gridWh, int256 p2pWh, int256 amount)
    {
        participant = uint32(word >> 224) & 0x7fffffff;
        gridWh = int48(uint48(word >> 176));
        p2pWh = int48(uint48(word >> 128));
        amount = int128(uint128(word));
    }

    /// @notice Whether the entry is authorised by an order in the settlement's calldata.
    /// @dev A flag bit instead of the order naming its participant saves a calldata word
    /// per order; participant ids stay below 2^31 (ParticipantRegistry enforces it).
    function byOrder(uint256 word) internal pure returns (bool) {
        return word >> 255 != 0;
    }
}
