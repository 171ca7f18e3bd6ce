public import Hummingbird
import Store

/// The request context of the API: Hummingbird's core storage plus the authenticated account.
public struct APIContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    var account: AccountStore.Account?

    public init(source: Source) {
        coreContext = .init(source: source)
        account = nil
    }

    /// Bodies over 64 KiB are refused with 413.
    public var maxUploadSize: Int { 64 * 1024 }
}
