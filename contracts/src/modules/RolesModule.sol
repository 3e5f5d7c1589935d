// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {MarketStorage} from "../MarketStorage.sol";

/// @title RolesModule
/// @notice Who runs the market, with OpenZeppelin's IAccessControl interface and events
/// (one admin role, DEFAULT_ADMIN_ROLE, administers every role): the admin, the oracle
/// and the grid operator. Also the market's EIP-712 domain.
contract RolesModule is MarketStorage {
    /// @notice The selectors the router sends here.
    function selectors() external pure returns (bytes4[] memory s) {
        s = new bytes4[](10);
        s[0] = this.hasRole.selector;
        s[1] = this.getRoleAdmin.selector;
        s[2] = this.grantRole.selector;
        s[3] = this.revokeRole.selector;
        s[4] = this.renounceRole.selector;
        s[5] = this.DEFAULT_ADMIN_ROLE.selector;
        s[6] = this.ORACLE_ROLE.selector;
        s[7] = this.GRID_OPERATOR_ROLE.selector;
        s[8] = this.GRID.selector;
        s[9] = this.domainSeparator.selector;
    }

    /// @notice Role that registers participants, grants roles, sets credit limits, freezes.
    // solhint-disable-next-line func-name-mixedcase
    function DEFAULT_ADMIN_ROLE() external pure returns (bytes32) {
        return DEFAULT_ADMIN;
    }

    /// @notice Role that submits settlements.
    // solhint-disable-next-line func-name-mixedcase
    function ORACLE_ROLE() external pure returns (bytes32) {
        return ORACLE;
    }

    /// @notice Role that sets tariffs and capacities and owns the grid's wallet.
    // solhint-disable-next-line func-name-mixedcase
    function GRID_OPERATOR_ROLE() external pure returns (bytes32) {
        return GRID_OPERATOR;
    }

    /// @notice Participant id of the grid.
    // solhint-disable-next-line func-name-mixedcase
    function GRID() external pure returns (uint32) {
        return GRID_ID;
    }

    /// @notice Whether `account` holds `role`.
    function hasRole(bytes32 role, address account) external view returns (bool) {
        return _roles[role][account];
    }

    /// @notice The role that administers `role`: always the admin role.
    function getRoleAdmin(bytes32) external pure returns (bytes32) {
        return DEFAULT_ADMIN;
    }

    /// @notice The admin grants `role` to `account`.
    function grantRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN) {
        _grantRole(role, account);
    }

    /// @notice The admin revokes `role` from `account`.
    function revokeRole(bytes32 role, address account) external onlyRole(DEFAULT_ADMIN) {
        _revokeRole(role, account);
    }

    /// @notice The caller gives up its own `role` (`callerConfirmation` must be itself).
    function renounceRole(bytes32 role, address callerConfirmation) external {
        if (callerConfirmation != msg.sender) revert AccessControlBadConfirmation();
        _revokeRole(role, msg.sender);
    }

    /// @notice The EIP-712 domain separator participants and meters sign for
    /// (name "GridLedger", version "1", this chain, this market).
    function domainSeparator() external view returns (bytes32) {
        return _domainSeparator();
    }
}
